// Package internal holds Hypha's leaf helpers: packages that every other
// package may import and that import no package of Hypha outside internal/
// themselves (their tests may), so that internal/ stays the ground floor
// of the build and no import runs back up from it. A helper that needs
// framework, rpc or any other package above belongs beside its users: a
// test helper as an unexported function of the tests that call it. Its
// test checks the rule.
package internal
