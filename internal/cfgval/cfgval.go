// Package cfgval reads the values of usrsvc's config keys the same way
// wherever a section is interpreted: package usrsvc for [Main] and the
// programs, package web for [Web].
package cfgval

import (
	"strings"

	"github.com/usrsvc/usrsvc/internal/suggest"
)

// Bool reads a boolean: true/yes/on/1 or false/no/off/0, in any case.
func Bool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// BoolHelp is what to write instead of a value Bool refuses.
const BoolHelp = "use true or false (yes/no, on/off, 1/0 also work)"

// DidYouMean formats suggest.Closest's answer as a message suffix
// ("; did you mean X?"), or "".
func DidYouMean(word string, candidates []string) string {
	if s := suggest.Closest(word, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// List splits a comma-separated list, trimming each item and dropping
// empty ones.
func List(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
