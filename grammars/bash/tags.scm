; Bash definitions and references for baton's index.

(function_definition name: (word) @name) @definition.function
(program
  (variable_assignment name: (variable_name) @name) @definition.variable)
(program
  (declaration_command (variable_assignment name: (variable_name) @name)) @definition.variable)

; References: every command name may be a function call.
(command name: (command_name (word) @name)) @reference.call
