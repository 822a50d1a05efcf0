package supervisordconf

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: any input parses without panicking into sections whose keys
// are lower-cased names without a delimiter, values without trailing
// blanks, and problems that name a line of the input.
func FuzzParse(f *testing.F) {
	for _, s := range iniSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p := Parse("t.conf", []byte(text))
		lines := strings.Count(text, "\n") + strings.Count(text, "\r") + 1
		for _, pr := range p.Problems {
			var n int
			if _, err := fmt.Sscanf(pr, "t.conf:%d:", &n); err != nil || n < 1 || n > lines {
				t.Fatalf("problem %q names no line of the input", pr)
			}
		}
		for _, s := range p.Sections {
			if s.Name == "" || strings.ContainsAny(s.Name, "\r\n") {
				t.Fatalf("section name %q", s.Name)
			}
			for _, k := range s.Keys {
				if k.Name == "" || k.Name != strings.ToLower(k.Name) || strings.ContainsAny(k.Name, "=:\n") {
					t.Fatalf("key name %q", k.Name)
				}
				if strings.TrimRight(k.Value, " \t\r\n") != k.Value && utf8.ValidString(k.Value) {
					t.Fatalf("value %q ends with blanks", k.Value)
				}
			}
		}
	})
}

// FuzzSplit: quoting each argument POSIX-style and splitting again gives
// the same arguments; Pairs and Expand never panic.
func FuzzSplit(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add(s)
	}
	for _, s := range expandSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		Pairs(text)
		out, _, err := Expand(text, map[string]any{"n": 1, "s": "x"}, nil)
		if err == nil && !strings.Contains(text, "%") && out != text {
			t.Fatalf("Expand changed %q without a %%: %q", text, out)
		}
		args, err := Split(text)
		if err != nil {
			return
		}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		again, err := Split(strings.Join(quoted, " "))
		if err != nil || strings.Join(again, "\x00") != strings.Join(args, "\x00") || len(again) != len(args) {
			t.Fatalf("Split(%q) = %q; quoted and split again: %q, %v", text, args, again, err)
		}
	})
}
