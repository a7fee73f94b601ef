; Lua definitions and references for baton's index.

(function_declaration
  name: (method_index_expression method: (identifier) @name)) @definition.method
(function_declaration
  name: [
    (identifier) @name
    (dot_index_expression field: (identifier) @name)
  ]) @definition.function

; `local f = function() end`, `M.f = function() end`.
(variable_declaration
  (assignment_statement
    (variable_list . name: (identifier) @name)
    (expression_list . value: (function_definition)))) @definition.function
(assignment_statement
  (variable_list
    .
    name: [
      (identifier) @name
      (dot_index_expression field: (identifier) @name)
    ])
  (expression_list . value: (function_definition))) @definition.function
(field
  name: (identifier) @name
  value: (function_definition)) @definition.function

; Module-level locals (`local M = {}`).
(chunk
  (variable_declaration
    (assignment_statement (variable_list . name: (identifier) @name))) @definition.variable)

; References.
(function_call
  name: [
    (identifier) @name
    (dot_index_expression field: (identifier) @name)
  ]) @reference.call
(function_call
  name: (method_index_expression method: (identifier) @name)) @reference.method
