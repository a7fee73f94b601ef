; JavaScript-only definitions; appended to ecmascript/tags.scm.

(field_definition property: (property_identifier) @name) @definition.field
(class_heritage (identifier) @name) @reference.class
