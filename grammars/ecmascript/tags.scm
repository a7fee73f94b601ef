; Definitions and references shared by JavaScript, TypeScript and TSX. Each language appends
; its own file (javascript/tags.scm, typescript/tags.scm), so only node types that exist in
; all three grammars go here.

(method_definition
  name: (property_identifier) @name
  (#eq? @name "constructor")) @definition.constructor
(method_definition name: (property_identifier) @name) @definition.method
(method_definition name: (private_property_identifier) @name) @definition.method

(class_declaration name: (_) @name) @definition.class
(class name: (_) @name) @definition.class

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(function_expression name: (identifier) @name) @definition.function

; `const f = () => {}`, `let f = function () {}`.
(variable_declarator
  name: (identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function

(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression)]) @definition.function

(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @definition.function

; Top-level constants and variables.
(program
  (lexical_declaration (variable_declarator name: (identifier) @name) @definition.variable))
(program
  (variable_declaration (variable_declarator name: (identifier) @name) @definition.variable))
(program
  (export_statement
    (lexical_declaration (variable_declarator name: (identifier) @name) @definition.variable)))


; References.
(call_expression function: (identifier) @name) @reference.call
(call_expression
  function: (member_expression property: (property_identifier) @name)) @reference.method
(new_expression constructor: (identifier) @name) @reference.class
(new_expression
  constructor: (member_expression property: (property_identifier) @name)) @reference.class
