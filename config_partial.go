package usrsvc

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/suggest"
)

// A broken configuration must never lock the operator out: stopping a
// program, asking for its status, and stopping or asking about usrsvcd work
// whatever else is wrong. LoadConfig gives those operations what still
// reads; this file is how it tells which programs a problem concerns.

// fallbackMain is [Main] with its defaults, for a main file that cannot be
// read (and the start of every [Main]).
func (l *configLoader) fallbackMain(m *Config) {
	m.LogFormat = "text"
	if l.home != "" {
		m.StateDir = filepath.Join(l.home, ".local", "state", "usrsvc")
	}
}

// about notes which key the problem just added concerns, when its line
// does not tell (a missing key is reported at its section's header).
func (l *configLoader) about(key string) {
	if l.keyOf == nil {
		l.keyOf = map[int]string{}
	}
	l.keyOf[len(l.problems)-1] = key
}

// loadedProgram is one [Program:NAME] section as resolved, with its
// DefaultSettings section (nil when none).
type loadedProgram struct {
	sec, defaults *sectionRef
	cfg           *Program
}

// fileLayout is what LoadConfigPartial needs of a parsed file: where
// sections start and which key each line sets.
type fileLayout struct {
	// starts holds the lines that open a top-level section, in order,
	// including headers that did not parse ("[Program:web" ends the section
	// above it as surely as a good one).
	starts []int
	// keys maps a line to the key it sets, lower-cased; subsection keys
	// (whose names never identify a process) map to subsectionKey.
	keys map[int]string
}

func newFileLayout(f *configobj.File, data []byte) *fileLayout {
	fl := &fileLayout{keys: map[int]string{}}
	for i, line := range strings.Split(string(data), "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "[") && !strings.HasPrefix(t, "[[") {
			fl.starts = append(fl.starts, i+1)
		}
	}
	for _, sec := range f.Sections {
		for _, k := range sec.Keys {
			fl.keys[k.Line] = strings.ToLower(k.Name)
		}
		for _, sub := range sec.Subs {
			for _, k := range sub.Keys {
				fl.keys[k.Line] = subsectionKey
			}
		}
	}
	return fl
}

// end returns the last line of the section whose header is at line.
func (fl *fileLayout) end(line int) int {
	i := sort.SearchInts(fl.starts, line+1)
	if i < len(fl.starts) {
		return fl.starts[i] - 1
	}
	return math.MaxInt
}

// subsectionKey stands for any key of an [[Env]] or [[Monitor]] subsection
// (and for a problem that concerns no key of the program).
const subsectionKey = "[[subsection]]"

// identifyingKeys are the program keys that decide which process is the
// program's and how it is stopped: a problem with any of them makes stop
// and status unable to act on the program.
var identifyingKeys = []string{"command", "useshell", "proctitle_re", "pidfile", "scan_for_process", "autopid",
	"term_to_kill_seconds", "defaults"}

// identifying reports whether a problem about key (as written; "" when the
// problem is on no key line) may change how the program's process is found
// or stopped. An unknown key that looks like an identifying one ("pidfle")
// counts: the key it was meant to be is missing or wrong.
func identifying(key string) bool {
	switch key {
	case "":
		return true
	case subsectionKey:
		return false
	}
	if a, ok := cfgProgramKeyAliases[key]; ok {
		key = a
	}
	if slices.Contains(identifyingKeys, key) {
		return true
	}
	if slices.Contains(cfgProgramKeys, key) || slices.Contains(cfgMonitorKeys, key) {
		return false
	}
	return slices.Contains(identifyingKeys, suggest.Closest(key, cfgProgramKeys))
}

// splitBroken moves the programs that any problem concerns from
// cfg.Programs to cfg.Broken, with their problems.
func (l *configLoader) splitBroken(cfg *Config) {
	// The section each problem lies in, and the key it concerns.
	type hit struct {
		p   problem
		key string
	}
	bySection := map[*sectionRef][]hit{}
	for i, p := range l.problems {
		fl := l.files[p.File]
		if fl == nil || p.Line <= 0 {
			continue
		}
		var in *sectionRef
		for _, s := range l.sections {
			if s.file == p.File && s.line <= p.Line && p.Line <= fl.end(s.line) && (in == nil || s.line > in.line) {
				in = s
			}
		}
		if in == nil {
			continue
		}
		key, ok := l.keyOf[i]
		if !ok {
			key = fl.keys[p.Line] // "" on a line that sets no key
		}
		bySection[in] = append(bySection[in], hit{p, key})
	}

	// Every program's lock and records live in the state directory: when
	// state_dir is unusable (the default stands in for it), nothing is
	// started; stop and status still act, in the default directory.
	var everyProgram []hit
	for _, p := range l.problems {
		if sd := l.stateDirBad; sd != nil && p.File == sd.file && p.Line == sd.line {
			everyProgram = append(everyProgram, hit{p, subsectionKey})
		}
	}
	if cfg.StateDir == "" { // no home directory and no state_dir: no lock can be taken
		for _, p := range l.problems {
			if p.File == cfg.Path && p.Line == cfg.MainLine {
				everyProgram = append(everyProgram, hit{p, ""})
			}
		}
	}

	count := map[string]int{}
	for _, lp := range l.programs {
		count[lp.cfg.Name]++
	}
	broken := map[string]*Program{}
	probs := map[string][]problem{}
	var order []string
	for _, lp := range l.programs {
		hits := slices.Concat(bySection[lp.sec], bySection[lp.defaults], everyProgram)
		if len(hits) == 0 && count[lp.cfg.Name] == 1 {
			continue
		}
		pc := broken[lp.cfg.Name]
		if pc == nil {
			pc = lp.cfg
			pc.findable = count[pc.Name] == 1 && pc.Pidfile != "" && (len(pc.Args) > 0 || pc.ProcTitleRE != nil)
			broken[pc.Name] = pc
			order = append(order, pc.Name)
		}
		for _, h := range hits {
			if !slices.Contains(probs[pc.Name], h.p) {
				probs[pc.Name] = append(probs[pc.Name], h.p)
			}
			if identifying(h.key) {
				pc.findable = false
			}
		}
	}
	for name, pc := range broken {
		ps := probs[name]
		sort.SliceStable(ps, func(i, j int) bool {
			a, b := ps[i], ps[j]
			if l.rank[a.File] != l.rank[b.File] {
				return l.rank[a.File] < l.rank[b.File]
			}
			return a.Line < b.Line
		})
		for _, p := range ps {
			pc.Problems = append(pc.Problems, p.String())
		}
	}
	cfg.Programs = slices.DeleteFunc(cfg.Programs, func(p *Program) bool { return broken[p.Name] != nil })
	sort.Strings(order)
	for _, name := range order {
		cfg.Broken = append(cfg.Broken, broken[name])
	}
}

// canFind reports whether stop and status can act on the program: always
// for a program of Config.Programs; for one of Config.Broken, when none of
// its problems concerns the keys that find and stop its process (command,
// useshell, proctitle_re, pidfile, scan_for_process, autopid,
// term_to_kill_seconds, defaults) and its section is the only one of its
// name.
func (p *Program) canFind() bool {
	return len(p.Problems) == 0 || p.findable
}

// brokenErr is the error of action on a program of Config.Broken: nil when
// the action can go on despite its problems (stop and status of a Findable
// program), else an error wrapping ErrInvalidConfig that says what to fix.
func (p *Program) brokenErr(action Action) error {
	if len(p.Problems) == 0 {
		return nil
	}
	first := p.Problems[0]
	more := ""
	if n := len(p.Problems) - 1; n > 0 {
		more = fmt.Sprintf(" (and %d more; usrsvcd checkconfig lists them all)", n)
	}
	switch {
	case action != ActionStop && action != ActionStatus:
		return fmt.Errorf("%w: %s is not started while its configuration has problems: %s%s; fix them and run the command again",
			ErrInvalidConfig, p.Name, first, more)
	case !p.canFind():
		return fmt.Errorf("%w: cannot tell how to find %s's process, its section (%s:%d) has problems with the keys that identify it: %s%s; fix them, or stop the process by its pid",
			ErrInvalidConfig, p.Name, p.File, p.Line, first, more)
	}
	return nil
}

// broken returns the program of c.Broken named name, or nil.
func (c *Config) broken(name string) *Program {
	for _, p := range c.Broken {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// allPrograms returns Programs and Broken together, sorted by name.
func (c *Config) allPrograms() []*Program {
	if len(c.Broken) == 0 {
		return c.Programs
	}
	all := append(slices.Clone(c.Programs), c.Broken...)
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}
