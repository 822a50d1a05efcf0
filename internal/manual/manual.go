// Package manual holds usrsvc's documentation for `usrsvc --readme`. Package
// usrsvc fills it in at initialisation (a go:embed in cmd/ cannot reach
// the repository's top directory, where README.md is).
package manual

// README is the text of README.md.
var README string
