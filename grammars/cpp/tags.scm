; C++-only definitions and references; c/tags.scm is appended to this file, and earlier
; patterns win, so C++ specifics go here.

; Constructors (named like their class, so the declarator is a plain identifier).
(field_declaration_list
  (function_definition
    declarator: (function_declarator declarator: (identifier) @name)) @definition.constructor)
(field_declaration_list
  (declaration
    declarator: (function_declarator declarator: (identifier) @name)) @definition.constructor)

; Methods defined inside a class body, and out of line (`void Foo::bar() {}`).
(field_declaration_list
  (function_definition
    declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method)
(field_declaration_list
  (declaration
    declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method)
(field_declaration_list
  (field_declaration
    declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method)
(function_definition
  declarator: (function_declarator
    declarator: (qualified_identifier name: (identifier) @name))) @definition.method
(function_definition
  declarator: (reference_declarator
    (function_declarator declarator: (identifier) @name))) @definition.function

(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(namespace_definition name: (namespace_identifier) @name) @definition.namespace
(alias_declaration name: (type_identifier) @name) @definition.type

; References.
(call_expression
  function: (qualified_identifier name: (identifier) @name)) @reference.call
(call_expression
  function: (template_function name: (identifier) @name)) @reference.call
(new_expression type: (type_identifier) @name) @reference.class
