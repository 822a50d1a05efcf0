package usrsvc

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// A program's default match is its command line as it shows in /proc: the
// whole title is the command's argv[0] — as written, as resolved in the
// program's PATH, or any absolute path to an executable of the same name
// (/bin/sleep and /usr/bin/sleep are one on most systems; pyenv, virtualenvs
// and wrappers run an interpreter by its full path) — followed by exactly
// its arguments. For a #! script the kernel runs the interpreter with the
// script's path as an argument, so the title starts with the interpreter
// line instead ("/usr/bin/python3 /home/u/app.py x", or "python3
// /home/u/app.py x" when the line is "#!/usr/bin/env python3"). A title
// that merely ends with the program's words ("tail -f app", "vim app",
// "usrsvc stop app") never matches.
//
// The same forms make the literal comparison of status and the regexp the
// launcher gets, so the two always agree.

// titleMatch is a program's default match.
type titleMatch struct {
	once  sync.Once
	forms []titleForm // what the title may start with: argv[0] in its forms
	rest  string      // the arguments after argv[0], each after a space
	re    *regexp.Regexp
}

// titleForm is one way argv[0] shows: lit exactly, or, with anyDir, lit
// after any absolute directory ("/", or "/" and path elements without a
// space, ending in "/").
type titleForm struct {
	lit    string
	anyDir bool
}

// defaultTitle returns pc's default match, computing its forms once with
// env (the program's environment, for PATH) and dir (its working
// directory). nil when pc has no argv.
func (pc *Program) defaultTitle(env []string, dir string) *titleMatch {
	if len(pc.Args) == 0 {
		return nil
	}
	t := pc.title
	if t == nil {
		// A Program built by hand without Config.Add.
		t = &titleMatch{}
	}
	t.once.Do(func() { t.forms, t.rest = titleForms(pc.Args, env, dir) })
	return t
}

// match reports whether title is the program's command line.
func (t *titleMatch) match(title string) bool {
	head, ok := strings.CutSuffix(title, t.rest)
	if !ok {
		return false
	}
	for _, f := range t.forms {
		if !f.anyDir {
			if head == f.lit {
				return true
			}
			continue
		}
		dir, ok := strings.CutSuffix(head, f.lit)
		if ok && strings.HasPrefix(dir, "/") && strings.HasSuffix(dir, "/") && !strings.Contains(dir, " ") {
			return true
		}
	}
	return false
}

// regexp returns the match as a regexp, for the launcher.
func (t *titleMatch) regexp() *regexp.Regexp {
	if t.re == nil {
		alts := make([]string, len(t.forms))
		for i, f := range t.forms {
			alts[i] = quoteTitle(f.lit)
			if f.anyDir {
				alts[i] = `/(?:[^ ]*/)?` + alts[i]
			}
		}
		t.re, _ = compileProcTitleRE(`^(?:` + strings.Join(alts, "|") + `)` + quoteTitle(t.rest) + `$`) // quoted literals always compile
	}
	return t.re
}

// titleForms lists what a title may start with for argv, and the rest.
func titleForms(argv []string, env []string, dir string) (forms []titleForm, rest string) {
	var b strings.Builder
	for _, a := range argv[1:] {
		b.WriteByte(' ')
		b.WriteString(a)
	}
	add := func(lit string, anyDir bool) {
		f := titleForm{lit, anyDir}
		if lit != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	add(argv[0], false)
	add(filepath.Base(argv[0]), true)
	resolved, err := lookPath(argv[0], env, dir)
	if err != nil {
		return forms, b.String()
	}
	add(resolved, false)
	if interp, arg, ok := shebang(resolved); ok {
		// The kernel runs "interp [arg] script args": the script as the
		// path it was executed by (the launcher resolves it).
		line := interp
		if arg != "" {
			line += " " + arg
		}
		add(line+" "+resolved, false)
		add(filepath.Base(line)+" "+resolved, true)
		if filepath.Base(interp) == "env" && arg != "" && !strings.HasPrefix(arg, "-") {
			// env runs its argument as the interpreter: "python3 script".
			add(arg+" "+resolved, false)
			add(filepath.Base(arg)+" "+resolved, true)
		}
	}
	return forms, b.String()
}

// shebang reads the #! line of an executable script: the interpreter and
// its one optional argument, as the kernel splits them.
func shebang(path string) (interp, arg string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	buf = buf[:n]
	if !bytes.HasPrefix(buf, []byte("#!")) {
		return "", "", false
	}
	line, _, _ := bytes.Cut(buf[2:], []byte("\n"))
	fields := strings.SplitN(strings.TrimSpace(strings.ReplaceAll(string(line), "\t", " ")), " ", 2)
	if fields[0] == "" {
		return "", "", false
	}
	if len(fields) == 2 {
		arg = strings.TrimSpace(fields[1])
	}
	return fields[0], arg, true
}

// quoteTitle quotes a literal for a regexp. A byte that is not UTF-8
// becomes "." (a regexp cannot hold it; matching reads it as one
// character), so the expression always compiles.
func quoteTitle(lit string) string {
	if utf8.ValidString(lit) {
		return regexp.QuoteMeta(lit)
	}
	var b strings.Builder
	for i, r := range lit {
		if r == utf8.RuneError && !strings.HasPrefix(lit[i:], "\uFFFD") {
			b.WriteByte('.')
			continue
		}
		b.WriteString(regexp.QuoteMeta(string(r)))
	}
	return b.String()
}

// procTitleRECache remembers compiled proctitle regexps: compiling them is
// most of the cost of a load, and a reread mostly compiles the same ones
// again. A *regexp.Regexp is safe for concurrent use, so configs may share
// them.
var procTitleRECache struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

// procTitleRECacheMax bounds procTitleRECache; it is emptied when full.
const procTitleRECacheMax = 4096

// compileProcTitleRE is regexp.Compile through procTitleRECache.
func compileProcTitleRE(expr string) (*regexp.Regexp, error) {
	procTitleRECache.Lock()
	re := procTitleRECache.m[expr]
	procTitleRECache.Unlock()
	if re != nil {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	procTitleRECache.Lock()
	if procTitleRECache.m == nil || len(procTitleRECache.m) >= procTitleRECacheMax {
		procTitleRECache.m = map[string]*regexp.Regexp{}
	}
	procTitleRECache.m[expr] = re
	procTitleRECache.Unlock()
	return re, nil
}
