; Ruby definitions and references for baton's index.

(method name: (_) @name) @definition.method
(singleton_method name: (_) @name) @definition.method
(alias name: (_) @name) @definition.method
(class name: (constant) @name) @definition.class
(class name: (scope_resolution name: (_) @name)) @definition.class
(singleton_class value: (_) @name) @definition.class
(module name: (constant) @name) @definition.module
(module name: (scope_resolution name: (_) @name)) @definition.module
(assignment left: (constant) @name) @definition.constant

; References. A bare identifier may be a method call without parentheses, but it may also be
; a local variable, so only explicit calls count.
(call method: (identifier) @name) @reference.call
(superclass (constant) @name) @reference.class
(call receiver: (constant) @name) @reference.class
