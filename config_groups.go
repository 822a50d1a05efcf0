package usrsvc

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/usrsvc/usrsvc/internal/configobj"
)

// Instances (numprocs), groups ([Group:NAME]) and dependencies (depends_on).

// instance is one program a [Program:NAME] section makes.
type instance struct {
	sec, ds *sectionRef
	n, num  int // numprocs, and this instance's number
}

// expandedKeys are the keys in which %(process_num)d and
// %(program_name)s expand.
var expandedKeys = []string{"command", "pidfile", "stdout", "stderr", "proctitle_re", "directory",
	"ready", "http_check", "tcp_check", "exec_check", "env_file"}

// processNumRE matches %(process_num)d, with a width (%(process_num)02d).
var processNumRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`%\(process_num\)(0?)([0-9]*)d`) })

// expand replaces %(process_num)d (%(process_num)02d, ...) by num and
// %(program_name)s by name.
func expand(v, name string, num int) string {
	if !strings.Contains(v, "%(") {
		return v
	}
	v = processNumRE().ReplaceAllStringFunc(v, func(m string) string {
		sub := processNumRE().FindStringSubmatch(m)
		width, _ := strconv.Atoi(sub[2])
		if sub[1] == "0" {
			return fmt.Sprintf("%0*d", width, num)
		}
		return fmt.Sprintf("%*d", width, num)
	})
	return strings.ReplaceAll(v, "%(program_name)s", name)
}

// instances returns the programs section s makes (with its
// DefaultSettings ds): one, or numprocs, each with its values expanded.
func (l *configLoader) instances(s, ds *sectionRef) []instance {
	n := 1
	r, ok := s.keys["numprocs"]
	if !ok && ds != nil {
		r, ok = ds.keys["numprocs"]
	}
	if ok && !r.invalid {
		if v, err := strconv.Atoi(strings.TrimSpace(r.value)); err == nil && v >= 1 && v <= 1000 {
			n = v // a bad value is reported by resolveProgram
		}
	}
	width := max(2, len(strconv.Itoa(n-1)))
	var out []instance
	for i := 0; i < n; i++ {
		name := s.name
		if n > 1 {
			name = fmt.Sprintf("%s_%0*d", s.name, width, i)
		}
		out = append(out, instance{sec: expandSection(s, name, s.name, i), ds: expandSection(ds, name, s.name, i), n: n, num: i})
	}
	return out
}

// expandSection returns a copy of s named name, its expandable values
// expanded for instance num of the section base.
func expandSection(s *sectionRef, name, base string, num int) *sectionRef {
	if s == nil {
		return nil
	}
	c := *s
	if s.kind == "Program" {
		c.name = name
	}
	c.keys = make(map[string]rawVal, len(s.keys))
	for k, r := range s.keys {
		if slices.Contains(expandedKeys, k) {
			r.value = expand(r.value, base, num)
		}
		c.keys[k] = r
	}
	c.monitor = make(map[string]rawVal, len(s.monitor))
	for k, r := range s.monitor {
		if slices.Contains(expandedKeys, k) {
			r.value = expand(r.value, base, num)
		}
		c.monitor[k] = r
	}
	c.env = make([]rawVal, len(s.env))
	for i, r := range s.env {
		r.value = expand(r.value, base, num)
		c.env[i] = r
	}
	return &c
}

// collectGroup reads a [Group:NAME] section.
func (l *configLoader) collectGroup(file string, sec *configobj.Section, name string) *sectionRef {
	s := &sectionRef{kind: "Group", name: name, file: file, line: sec.Line, keys: map[string]rawVal{}}
	where := "[" + sec.Name + "]"
	l.collectKeys(file, sec, s.keys, where, cfgGroupKeys, nil, cfgProgramKeys, "a [Program:NAME] section")
	for _, sub := range sec.Subs {
		l.add(file, sub.Line, "%s has no subsections; remove [[%s]]", where, sub.Name)
	}
	return s
}

// resolveGroups adds the [Group:NAME] sections to cfg.Groups: their
// programs (a name of a section with numprocs stands for its instances).
func (l *configLoader) resolveGroups(cfg *Config, groups []*sectionRef, byName map[string]*Program) {
	for _, g := range groups {
		r, ok := g.keys["programs"]
		if !ok || strings.TrimSpace(r.value) == "" {
			l.add(g.file, g.line, "[Group:%s] is missing the required key programs: add programs = NAME, NAME", g.name)
			continue
		}
		names, ok := l.namesVal(r)
		if !ok {
			continue
		}
		switch first, dup := cfg.Groups[g.name]; {
		case byName[g.name] != nil:
			p := byName[g.name]
			l.add(g.file, g.line, "[Group:%s] has the name of [Program:%s] (%s:%d): a name is a program or a group; rename one", g.name, g.name, p.File, p.Line)
			continue
		case dup:
			l.add(g.file, g.line, "[Group:%s] is defined twice, or is the name of a program with numprocs (%d instances); rename one", g.name, len(first))
			continue
		}
		var members []string
		for _, n := range names {
			switch {
			case byName[n] != nil:
				members = append(members, n)
			case cfg.Groups[n] != nil:
				members = append(members, cfg.Groups[n]...)
			default:
				l.addAt(r, "programs: %q is not a program%s", n, cfgDidYouMean(n, cfg.names()))
			}
		}
		slices.Sort(members)
		if cfg.Groups == nil {
			cfg.Groups = map[string][]string{}
		}
		cfg.Groups[g.name] = slices.Compact(members)
	}
}

// checkPidfiles refuses two programs sharing one pidfile.
func (l *configLoader) checkPidfiles(cfg *Config) {
	owner := map[string]*Program{}
	for _, p := range cfg.Programs {
		if p.Pidfile == "" {
			continue
		}
		if q := owner[p.Pidfile]; q != nil {
			l.add(p.File, p.Line, "[Program:%s] has the pidfile %s of [Program:%s] (%s:%d): each program needs its own "+
				"(leave pidfile unset to get %s)", p.Name, p.Pidfile, q.Name, q.File, q.Line, "<state_dir>/pids/NAME.pid")
			continue
		}
		owner[p.Pidfile] = p
	}
}

// dependencies returns the programs pc depends on directly, its
// depends_on names expanded (a group stands for its programs), sorted;
// unknown lists the names that are neither a program nor a group.
func (c *Config) dependencies(pc *Program) (deps, unknown []string) {
	for _, n := range pc.DependsOn {
		switch {
		case c.Program(n) != nil:
			deps = append(deps, n)
		case c.Groups[n] != nil:
			deps = append(deps, c.Groups[n]...)
		default:
			unknown = append(unknown, n)
		}
	}
	slices.Sort(deps)
	return slices.Compact(deps), unknown
}

// dependencyCycle returns a cycle of depends_on among c's programs
// (a -> b -> a), nil when there is none.
func (c *Config) dependencyCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(name string) bool
	visit = func(name string) bool {
		color[name] = grey
		stack = append(stack, name)
		pc := c.Program(name)
		if pc != nil {
			deps, _ := c.dependencies(pc)
			for _, d := range deps {
				switch color[d] {
				case grey:
					i := slices.Index(stack, d)
					cycle = append(slices.Clone(stack[i:]), d)
					return true
				case white:
					if visit(d) {
						return true
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[name] = black
		return false
	}
	names := c.names()
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white && visit(n) {
			return cycle
		}
	}
	return nil
}

// checkDependencies reports depends_on names that are neither a program
// nor a group, and a dependency cycle.
func (l *configLoader) checkDependencies(cfg *Config) {
	depsKey := func(p *Program) rawVal {
		for _, lp := range l.programs {
			if lp.cfg == p {
				if r, ok := lp.sec.keys["depends_on"]; ok {
					return r
				}
				if lp.defaults != nil {
					if r, ok := lp.defaults.keys["depends_on"]; ok {
						return r
					}
				}
			}
		}
		return rawVal{file: p.File, line: p.Line}
	}
	names := cfg.names()
	for g := range cfg.Groups {
		names = append(names, g)
	}
	reported := map[string]bool{}
	for _, p := range cfg.Programs {
		_, unknown := cfg.dependencies(p)
		for _, n := range unknown {
			r := depsKey(p)
			if key := fmt.Sprintf("%s:%d:%s", r.file, r.line, n); !reported[key] {
				reported[key] = true
				l.addAt(r, "depends_on: %q is not a program or a group%s", n, cfgDidYouMean(n, names))
			}
		}
	}
	if cycle := cfg.dependencyCycle(); cycle != nil {
		l.addAt(depsKey(cfg.Program(cycle[0])), "dependency cycle: %s; a program cannot wait for itself", strings.Join(cycle, " -> "))
	}
}
