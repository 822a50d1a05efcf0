// Package configobj parses the configobj-style INI dialect of usrsvc's
// config files, keeping the file and line of every section and key so that
// every later complaint can say exactly where it comes from.
//
// The dialect:
//
//   - "[Name]" opens a section; "[[Name]]" (indented or not) opens a
//     subsection of the section above it. A subsection before any section is
//     an error. Deeper nesting is not supported.
//   - "key = value" sets a key of the current (sub)section. A key before any
//     section is an error. The same key twice in one (sub)section is an error
//     citing the first line; so is the same subsection twice in one section.
//   - Lines whose first non-blank character is '#' or ';' are comments. An
//     inline comment starts at a '#' or ';' that follows a space or tab and
//     is outside quotes, so "sleep 1; echo" and "http://x/#frag" are kept.
//   - A value that is entirely one quoted string ('...' or "...", optionally
//     followed by an inline comment) has its quotes stripped; there are no
//     escapes inside it (put a " inside '...' and a ' inside "..."). A value
//     starting with a quote that never closes is an error. A value with
//     quotes elsewhere (a shell command such as "/opt/my app/x" --flag) is
//     kept as written, quotes included.
//   - Names, keys and values are taken as written (trimmed of blanks);
//     matching keywords case-insensitively is the caller's business.
//   - Blank values are allowed; CRLF line ends and a UTF-8 byte order mark
//     are tolerated; a line that is not valid UTF-8, or holds a NUL byte,
//     is an error.
//
// Parse reports every syntax error, not just the first, and never panics.
package configobj

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// File is a parsed config file.
type File struct {
	Name     string     // the file name given to Parse
	Sections []*Section // top-level sections in file order
}

// Section is a "[Name]" section or a "[[Name]]" subsection.
type Section struct {
	Name string     // as written, trimmed
	Line int        // line of the header
	Keys []*Key     // in file order
	Subs []*Section // subsections in file order (always empty for a subsection)
}

// Key is one "key = value" line.
type Key struct {
	Name  string // as written, trimmed
	Value string // unquoted, inline comment removed
	// Comment is the inline comment removed from the value, from its '#'
	// or ';' on ("" when there was none): a caller whose values may
	// contain " ;" or " #" (a password) can tell that part of what was
	// written is not in Value.
	Comment string
	Line    int
	// Invalid is true when the value could not be read (e.g. an unterminated
	// quote, already reported as an Error): the key is present, its value is
	// not usable.
	Invalid bool
}

// Error is one syntax error.
type Error struct {
	File string
	Line int
	Msg  string
}

// Error formats the error as "file:line: message".
func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ErrorList is every syntax error of a file, in line order. Parse returns
// it as its error.
type ErrorList []*Error

// Error lists the errors one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Parse parses data, naming it name in errors. It always returns a File
// holding everything that parsed; the error, when not nil, is an ErrorList.
func Parse(name string, data []byte) (*File, error) {
	p := &parser{f: &File{Name: name}, keyLines: map[*Section]map[string]int{}}
	text := strings.TrimPrefix(string(data), "\uFEFF")
	for i, raw := range strings.Split(text, "\n") {
		p.line(i+1, strings.TrimSuffix(raw, "\r"))
	}
	if len(p.errs) > 0 {
		return p.f, p.errs
	}
	return p.f, nil
}

type parser struct {
	f        *File
	errs     ErrorList
	top      *Section // current [Section], nil before the first one
	cur      *Section // where keys go; nil after a bad header (keys are then skipped)
	skipping bool     // cur is nil because of a bad header: drop keys silently
	keyLines map[*Section]map[string]int
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.f.Name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) line(n int, line string) {
	if !utf8.ValidString(line) {
		p.errorf(n, "line is not valid UTF-8 text")
		return
	}
	if strings.IndexByte(line, 0) >= 0 {
		p.errorf(n, "line contains a NUL byte")
		return
	}
	t := strings.TrimSpace(line)
	switch {
	case t == "" || t[0] == '#' || t[0] == ';':
	case t[0] == '[':
		p.header(n, t)
	default:
		p.keyValue(n, t)
	}
}

func (p *parser) header(n int, t string) {
	p.cur, p.skipping = nil, true
	depth := len(t) - len(strings.TrimLeft(t, "["))
	if depth > 2 {
		p.errorf(n, "%s: only [Section] and [[Subsection]] exist", t)
		return
	}
	rest := t[depth:]
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		p.errorf(n, "section header %s is missing its closing %s", t, strings.Repeat("]", depth))
		return
	}
	name := strings.TrimSpace(rest[:end])
	closing := rest[end:]
	after := strings.TrimLeft(closing, "]")
	if len(closing)-len(after) != depth || strings.ContainsAny(name, "[") {
		p.errorf(n, "section header %s has unbalanced brackets", t)
		return
	}
	if after = strings.TrimSpace(after); after != "" && after[0] != '#' && after[0] != ';' {
		p.errorf(n, "unexpected text %q after the section header", after)
		return
	}
	if name == "" {
		p.errorf(n, "section header %s has no name", t)
		return
	}
	s := &Section{Name: name, Line: n}
	if depth == 1 {
		p.f.Sections = append(p.f.Sections, s)
		p.top, p.cur, p.skipping = s, s, false
		return
	}
	if p.top == nil {
		p.errorf(n, "subsection [[%s]] comes before any [Section]; put it under the section it belongs to", name)
		return
	}
	for _, o := range p.top.Subs {
		if o.Name == name {
			p.errorf(n, "duplicate subsection [[%s]] in [%s] (first at line %d); merge them", name, p.top.Name, o.Line)
			return
		}
	}
	p.top.Subs = append(p.top.Subs, s)
	p.cur, p.skipping = s, false
}

// keyLine returns the line of the current section's key name, if it has
// one. A section's few keys are scanned; past 16 they are indexed.
func (p *parser) keyLine(name string) (int, bool) {
	if lines := p.keyLines[p.cur]; lines != nil {
		n, ok := lines[name]
		return n, ok
	}
	keys := p.cur.Keys
	if len(keys) < 16 {
		for _, k := range keys {
			if k.Name == name {
				return k.Line, true
			}
		}
		return 0, false
	}
	lines := make(map[string]int, 2*len(keys))
	for _, k := range keys {
		lines[k.Name] = k.Line
	}
	p.keyLines[p.cur] = lines
	n, ok := lines[name]
	return n, ok
}

func (p *parser) keyValue(n int, t string) {
	eq := strings.IndexByte(t, '=')
	if eq < 0 {
		p.errorf(n, "expected `key = value`, a [Section] header or a comment, got %q", t)
		return
	}
	name := strings.TrimSpace(t[:eq])
	if name == "" {
		p.errorf(n, "missing key name before '='")
		return
	}
	value, comment, msg := parseValue(t[eq+1:])
	if msg != "" {
		p.errorf(n, "%s: %s", name, msg)
	}
	if p.cur == nil {
		if !p.skipping {
			p.errorf(n, "key %q comes before any [Section]", name)
		}
		return
	}
	if first, dup := p.keyLine(name); dup {
		p.errorf(n, "duplicate key %q in [%s] (first at line %d); keep only one", name, p.cur.Name, first)
		return
	}
	p.cur.Keys = append(p.cur.Keys, &Key{Name: name, Value: value, Comment: comment, Line: n, Invalid: msg != ""})
	if lines := p.keyLines[p.cur]; lines != nil {
		lines[name] = n
	}
}

// parseValue unquotes the text after '=' and removes its inline comment,
// which it returns too. It returns a non-empty message when the value is
// not valid.
func parseValue(raw string) (value, comment, msg string) {
	v := strings.TrimSpace(raw)
	if v == "" || (len(v) < len(raw) && (v[0] == '#' || v[0] == ';')) {
		return "", v, "" // blank, or only an inline comment
	}
	if q := v[0]; q == '"' || q == '\'' {
		end := strings.IndexByte(v[1:], q)
		if end < 0 {
			return "", "", fmt.Sprintf("unterminated quote: the value starts with %c but never closes it", q)
		}
		rest := v[2+end:]
		if r := strings.TrimSpace(rest); r == "" || (rest != r && (r[0] == '#' || r[0] == ';')) {
			return v[1 : 1+end], r, ""
		}
	}
	var quote byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote == 0 && c == '\\', quote == '"' && c == '\\':
			i++ // the next byte is escaped
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote == 0 && (c == '#' || c == ';') && i > 0 && (v[i-1] == ' ' || v[i-1] == '\t'):
			return strings.TrimRight(v[:i], " \t"), v[i:], ""
		case quote != 0 && c == quote:
			quote = 0
		}
	}
	return v, "", ""
}
