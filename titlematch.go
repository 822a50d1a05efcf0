package usrsvc

import (
	"regexp"
	"strings"
	"sync"
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

// setDefaultTitle makes pc match titles by SPEC §3's default for args.
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
// for a ProgramConfig not made by LoadConfig without proctitle_re.
func (pc *ProgramConfig) TitleRegexp() *regexp.Regexp {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE
	}
	if pc.defaultRE != nil {
		return pc.defaultRE.get()
	}
	return nil
}
