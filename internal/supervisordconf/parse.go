// Package supervisordconf reads supervisord's configuration files as
// supervisord does: its INI dialect (Python's RawConfigParser with
// supervisord's settings), its [include] section, its %(name)s expansions,
// and the shell-like splitting of command and environment. It only reads:
// what a section means for usrsvc is package svimport's business.
//
// The dialect, as supervisord 4 reads it:
//
//   - "[name]" starts a section; the name is what lies between the first
//     "[" and the last "]" of the line, colons and spaces included
//     ("program:web"; "[ program:web ]" is no program section). Section names are case-sensitive; a section seen
//     twice is one section (later keys override earlier ones).
//   - "key = value" or "key: value" (the first "=" or ":" splits), the key
//     lower-cased, both sides trimmed. A key seen twice keeps the last value.
//   - A line whose first non-blank character is "#" or ";" is a comment; so
//     is the rest of a line from a "#" or ";" that follows whitespace
//     ("a=b ;comment", while "a=b;c" keeps "b;c").
//   - A line indented deeper than its key's line continues the value (joined
//     with "\n"); blank lines inside a value are kept, trailing ones dropped.
//   - "%%" is a literal "%" and "%(name)s" an expansion, resolved later
//     ([Expand]), not here.
//   - [DEFAULT] keys are defaults for every other section.
package supervisordconf

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// File is one parsed configuration file.
type File struct {
	Path     string
	Sections []*Section
	// Problems are the lines supervisord would refuse, as "path:line:
	// message"; the rest of the file is read all the same.
	Problems []string
}

// Section is a [name] section.
type Section struct {
	Name string // as written between the brackets: "program:web"
	File string
	Line int
	Keys []*Key // in the order of their first appearance
}

// Key is one key of a section.
type Key struct {
	Name  string // lower-cased
	Value string // raw: continuation lines joined with "\n", nothing expanded
	File  string
	Line  int
}

// Get returns the key named name (lower-case), or nil.
func (s *Section) Get(name string) *Key {
	for _, k := range s.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Kind is the part of the section's name before its first colon
// ("program" for "program:web"), and Arg the part after it ("web").
func (s *Section) Kind() string { k, _, _ := strings.Cut(s.Name, ":"); return k }

// Arg is the section name after its first colon, trimmed.
func (s *Section) Arg() string { _, a, _ := strings.Cut(s.Name, ":"); return strings.TrimSpace(a) }

// Parse reads data, the content of the file path.
func Parse(path string, data []byte) *File {
	f := &File{Path: path}
	text := strings.TrimPrefix(string(data), "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	byName := map[string]*Section{}
	var cur *Section
	var key *Key         // the key whose value continuation lines extend
	var pending []string // lines of key's value
	indent := 0          // indentation of the line that started the key or section
	flush := func() {
		if key != nil {
			key.Value = strings.TrimRightFunc(strings.Join(pending, "\n"), unicode.IsSpace)
		}
		key, pending = nil, nil
	}
	for i, line := range strings.Split(text, "\n") {
		lineno := i + 1
		start := commentStart(line)
		value := strings.TrimSpace(line[:start])
		if value == "" {
			if start == len(line) && key != nil {
				pending = append(pending, "") // a blank line inside a value
			}
			continue
		}
		lineIndent := len(line) - len(strings.TrimLeftFunc(line, unicode.IsSpace))
		if key != nil && lineIndent > indent {
			pending = append(pending, value)
			continue
		}
		flush()
		indent = lineIndent
		if strings.HasPrefix(value, "[") {
			if end := strings.LastIndex(value, "]"); end > 1 {
				name := value[1:end] // not trimmed: "[ program:x ]" is no program section for supervisord either
				if s := byName[name]; s != nil {
					cur = s
				} else {
					cur = &Section{Name: name, File: path, Line: lineno}
					byName[name] = cur
					f.Sections = append(f.Sections, cur)
				}
				continue
			}
		}
		if cur == nil {
			f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: %q comes before any [section] header", path, lineno, value))
			continue
		}
		d := strings.IndexAny(value, "=:")
		if d < 0 {
			f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: %q is not key = value", path, lineno, value))
			continue
		}
		name := strings.ToLower(strings.TrimSpace(value[:d]))
		if name == "" {
			f.Problems = append(f.Problems, fmt.Sprintf("%s:%d: %q has no key before its %q", path, lineno, value, value[d]))
			continue
		}
		if key = cur.Get(name); key == nil {
			key = &Key{Name: name}
			cur.Keys = append(cur.Keys, key)
		}
		key.File, key.Line = path, lineno
		pending = []string{strings.TrimSpace(value[d+1:])}
	}
	flush()
	return f
}

// commentStart is where the comment of line begins (len(line) when it has
// none): at 0 for a line whose first non-blank character is "#" or ";",
// else at the first "#" or ";" that follows whitespace.
func commentStart(line string) int {
	if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
		return 0
	}
	for i, r := range line {
		if r == '#' || r == ';' {
			if prev, _ := utf8.DecodeLastRuneInString(line[:i]); i > 0 && unicode.IsSpace(prev) {
				return i
			}
		}
	}
	return len(line)
}
