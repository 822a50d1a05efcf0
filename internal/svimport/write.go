package svimport

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/usrsvc/usrsvc/internal/configobj"
)

// valueText writes v as a usrsvc config value that reads back as v: as is,
// or quoted when blanks at its ends, a leading quote or an inline comment
// would change it. ok is false when no writing reads back as v.
func valueText(v string) (string, bool) {
	if strings.ContainsAny(v, "\n\r\x00") {
		return "", false
	}
	for _, text := range []string{v, `"` + v + `"`, `'` + v + `'`} {
		f, err := configobj.Parse("value", []byte("[S]\nk = "+text+"\n"))
		if err == nil && len(f.Sections) == 1 && len(f.Sections[0].Keys) == 1 {
			if k := f.Sections[0].Keys[0]; !k.Invalid && k.Value == v {
				return text, true
			}
		}
	}
	return "", false
}

// shellQuote writes one argument so that a POSIX shell (and usrsvc's
// command splitting) reads it back as is: plain when it is made of
// harmless characters, else in single quotes.
func shellQuote(a string) string {
	plain := a != ""
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			plain = false
			break
		}
	}
	if plain {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

// joinQuoted writes args as one command line usrsvc splits back into args.
// A first argument with "=" is quoted: unquoted, a shell takes it for an
// assignment.
func joinQuoted(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
		if i == 0 && out[i] == a && strings.Contains(a, "=") {
			out[i] = "'" + a + "'"
		}
	}
	return strings.Join(out, " ")
}

func (s *section) write(b *strings.Builder) {
	b.WriteString("\n")
	for _, c := range s.comments {
		b.WriteString(c + "\n")
	}
	b.WriteString(s.header + "\n")
	for _, l := range s.lines {
		b.WriteString(l + "\n")
	}
	if len(s.env) > 0 {
		b.WriteString("[[Env]]\n")
		for _, l := range s.env {
			b.WriteString(l + "\n")
		}
	}
}

// header is the comment a converted main file starts with.
func (r *Result) header() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# usrsvc configuration converted by usrsvc import from %s", r.Source)
	if n := len(r.Read) - 1; n > 0 {
		fmt.Fprintf(&b, "\n# and the %d files it includes", n)
	}
	b.WriteString(".\n# Check it with: usrsvcd --config THIS_FILE checkconfig\n" +
		"# \"# not converted:\" comments say what supervisord did that usrsvc does not, and why.\n")
	return b.String()
}

// Single is the whole converted configuration as one main file (what
// usrsvc import prints).
func (r *Result) Single() string {
	var b strings.Builder
	b.WriteString(r.header())
	r.main.write(&b)
	if r.web != nil {
		r.web.write(&b)
	}
	r.defaults.write(&b)
	for _, s := range r.programs {
		s.write(&b)
	}
	for _, s := range r.groups {
		s.write(&b)
	}
	r.writeTrailer(&b)
	return b.String()
}

func (r *Result) writeTrailer(b *strings.Builder) {
	if len(r.trailer) == 0 {
		return
	}
	b.WriteString("\n# ---- Not converted, or nothing to convert ----\n")
	for _, l := range r.trailer {
		if l == "" && strings.HasSuffix(b.String(), "----\n") {
			continue
		}
		b.WriteString(l + "\n")
	}
}

// ConfigDir is the config_dir of a converted configuration written with
// Files, relative to its main file.
const ConfigDir = "usrsvc.d"

// File is one file of a converted configuration.
type File struct {
	Name string // relative to the output directory: usrsvc.cfg, usrsvc.d/web.cfg
	Text string
}

// Files is the converted configuration as a main file (usrsvc.cfg, with
// [Main], [Web] and the notes) and a config_dir with one file per program
// and per group, and one for [DefaultSettings:supervisord].
func (r *Result) Files() []File {
	var b strings.Builder
	b.WriteString(r.header())
	main := *r.main
	main.lines = append([]string{main.lines[0], "config_dir = " + ConfigDir}, main.lines[1:]...)
	main.write(&b)
	if r.web != nil {
		r.web.write(&b)
	}
	r.writeTrailer(&b)
	files := []File{{Name: "usrsvc.cfg", Text: b.String()}}
	for _, s := range append(append([]*section{r.defaults}, r.programs...), r.groups...) {
		var sb strings.Builder
		fmt.Fprintf(&sb, "# Converted by usrsvc import from %s.\n", r.Source)
		s.write(&sb)
		files = append(files, File{Name: filepath.Join(ConfigDir, s.file), Text: sb.String()})
	}
	return files
}

// Summary is the line usrsvc import ends with on stderr.
func (r *Result) Summary() string {
	return fmt.Sprintf("%s, %s, %s not converted (see the \"# not converted:\" comments)",
		count(r.Programs, "program"), count(r.Groups, "group"), count(r.NotConverted, "key"))
}

func count(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
