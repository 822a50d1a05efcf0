package usrsvc

import (
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// lazyRegexp compiles a regexp on first use.
type lazyRegexp struct {
	once sync.Once
	expr string
	re   *regexp.Regexp
}

func (l *lazyRegexp) get() *regexp.Regexp {
	l.once.Do(func() {
		l.re, _ = compileProcTitleRE(l.expr) // a quoted literal always compiles
	})
	return l.re
}

// setDefaultTitle makes pc match titles by the default proctitle_re for args.
// Compiling 200 default regexps was half the cost of loading a config, and
// `usrsvc status all` loads one every time: the default is matched as the
// literal it is, and compiled only if someone asks for the regexp.
func (pc *ProgramConfig) setDefaultTitle(args []string) {
	pc.ProcTitleRE = nil
	pc.titleLiteral = strings.Join(args, " ")
	pc.defaultRE = &lazyRegexp{expr: defaultProcTitleExpr(args)}
}

// MatchTitle reports whether a process title matches the program's
// proctitle_re (unanchored search), or its default: the command's argv
// joined by spaces as the whole title or its tail after a '/' or a space.
func (pc *ProgramConfig) MatchTitle(title string) bool {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE.MatchString(title)
	}
	lit := pc.titleLiteral
	if lit == "" && pc.defaultRE == nil {
		lit = strings.Join(pc.Args, " ") // a ProgramConfig built by hand
	}
	if lit == "" {
		return false
	}
	if !strings.HasSuffix(title, lit) {
		return false
	}
	rest := title[:len(title)-len(lit)]
	return rest == "" || rest[len(rest)-1] == ' ' || rest[len(rest)-1] == '/'
}

// TitleRegexp returns the regexp that matches the program's titles: the
// configured proctitle_re, or the default one compiled on first use. nil
// when there is neither ProcTitleRE nor Args.
func (pc *ProgramConfig) TitleRegexp() *regexp.Regexp {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE
	}
	if pc.defaultRE != nil {
		return pc.defaultRE.get()
	}
	if len(pc.Args) > 0 { // a ProgramConfig built by hand
		re, _ := compileProcTitleRE(defaultProcTitleExpr(pc.Args)) // a quoted literal always compiles
		return re
	}
	return nil
}

// defaultProcTitleExpr is the default proctitle_re for argv args: the args
// joined by spaces, as the whole title or its tail after '/' or ' ' (so
// "python3 app.py" matches "/usr/bin/python3 app.py"). A byte that is not
// UTF-8 becomes "." (a regexp cannot hold it; matching reads it as one
// character), so the expression always compiles.
func defaultProcTitleExpr(args []string) string {
	lit := strings.Join(args, " ")
	if utf8.ValidString(lit) {
		return `(^|[ /])` + regexp.QuoteMeta(lit) + `$`
	}
	var b strings.Builder
	for i, r := range lit {
		if r == utf8.RuneError && !strings.HasPrefix(lit[i:], "\uFFFD") {
			b.WriteByte('.')
			continue
		}
		b.WriteString(regexp.QuoteMeta(string(r)))
	}
	return `(^|[ /])` + b.String() + `$`
}

// procTitleRECache remembers compiled proctitle regexps: compiling them is most of
// the cost of a load, and a reread mostly compiles the same ones again.
// A *regexp.Regexp is safe for concurrent use, so configs may share them.
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
