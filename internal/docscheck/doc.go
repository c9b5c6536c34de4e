// Package docscheck holds the test that keeps the project's documentation
// honest: every ```go block of README.md and docs/ must be compiled code,
// a piece of a file under examples/ or of a testable Example, and every
// relative link between the documents must lead to a file and heading that
// exist. It has no code of its own; run it with go test ./internal/docscheck/.
package docscheck
