package svimport

import (
	"strings"
)

// MappingMarkdown is the guide's table of every supervisord key and what
// usrsvc import makes of it, generated from the rules the conversion uses:
// docs/migrating-from-supervisord.md holds it between the markers
// DocBegin and DocEnd.
func MappingMarkdown() string {
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("### " + k.heading + "\n")
		if k.intro != "" {
			b.WriteString("\n" + k.intro + "\n")
		}
		if len(k.rules) == 0 {
			continue
		}
		b.WriteString("\n| supervisord | usrsvc | how, or why not |\n|---|---|---|\n")
		for _, r := range k.rules {
			b.WriteString("| `" + r.key + "` | " + cell(r.usrsvc) + " | " + cell(r.doc) + " |\n")
		}
	}
	return b.String()
}

// The markers around the generated part of the guide.
const (
	DocBegin = "<!-- The tables below are generated from internal/svimport/rules.go: edit them there, then run\n     go test ./internal/svimport -run TestMigrationDoc -update -->\n"
	DocEnd   = "<!-- End of the generated tables. -->\n"
)

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
