package introspect

// Register is register, for the tests of package introspect_test.
var Register = register

// Schema is schemaOf, for tests.
var Schema = schemaOf
