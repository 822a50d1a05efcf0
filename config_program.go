package usrsvc

import (
	"fmt"
	"strings"
	"syscall"
	"time"
)

// newProgram returns a Program holding every documented default.
func newProgram(name, file string, line int) *Program {
	return &Program{
		Name: name, File: file, Line: line,
		Enabled: true, AutoPid: true, ScanForProcess: true, Autostart: true, Autorestart: true,
		SuccessSeconds: 2 * time.Second, TermToKill: 8 * time.Second, InheritEnv: true,
		MonitorAfter: 30 * time.Second, MonitorInterval: 5 * time.Second,
	}
}

// cfgProgramBools are the boolean program keys and their fields.
var cfgProgramBools = []struct {
	key   string
	field func(*Program) *bool
}{
	{"useshell", func(p *Program) *bool { return &p.UseShell }},
	{"enabled", func(p *Program) *bool { return &p.Enabled }},
	{"autopid", func(p *Program) *bool { return &p.AutoPid }},
	{"scan_for_process", func(p *Program) *bool { return &p.ScanForProcess }},
	{"autostart", func(p *Program) *bool { return &p.Autostart }},
	{"stop_group", func(p *Program) *bool { return &p.StopGroup }},
	{"inherit_env", func(p *Program) *bool { return &p.InheritEnv }},
}

// durationKey is a key holding seconds, > 0 when positive, else ≥ 0.
type durationKey struct {
	key      string
	positive bool
	field    func(*Program) *time.Duration
}

var cfgProgramDurations = []durationKey{
	{"restart_delay", false, func(p *Program) *time.Duration { return &p.RestartDelay }},
	{"success_seconds", true, func(p *Program) *time.Duration { return &p.SuccessSeconds }},
	{"term_to_kill_seconds", false, func(p *Program) *time.Duration { return &p.TermToKill }},
	{"ready_timeout", true, func(p *Program) *time.Duration { return &p.ReadyTimeout }},
}

var cfgMonitorDurations = []durationKey{
	{"monitor_after", false, func(p *Program) *time.Duration { return &p.MonitorAfter }},
	{"monitor_interval", true, func(p *Program) *time.Duration { return &p.MonitorInterval }},
}

// resolveProgram types and checks the keys of s, taking the ones it does not
// set from ds (its DefaultSettings, or nil). With program false, s is a
// DefaultSettings section checked on its own: its values are typed, but
// nothing is required and the command is not interpreted (that happens in
// each program using it, where useshell and proctitle_re are known).
func (l *configLoader) resolveProgram(s, ds *sectionRef, program bool) *Program {
	p := newProgram(s.name, s.file, s.line)
	if ds != nil {
		p.Defaults = ds.name
	}
	get := func(key string) (rawVal, bool) {
		if r, ok := s.keys[key]; ok {
			return r, true
		}
		if ds != nil {
			r, ok := ds.keys[key]
			return r, ok
		}
		return rawVal{}, false
	}
	getMon := func(key string) (rawVal, bool) {
		if r, ok := s.monitor[key]; ok {
			return r, true
		}
		if ds != nil {
			r, ok := ds.monitor[key]
			return r, ok
		}
		return rawVal{}, false
	}
	getHook := func(key string) (rawVal, bool) {
		if r, ok := s.hook[key]; ok {
			return r, true
		}
		if ds != nil {
			r, ok := ds.hook[key]
			return r, ok
		}
		return rawVal{}, false
	}
	header := fmt.Sprintf("[%s:%s]", s.kind, s.name)
	missing := func(key, what string) {
		if program {
			l.add(s.file, s.line, "%s is missing the required key %s: add %s = %s", header, key, key, what)
			l.about(key)
		}
	}

	badUseShell := false // then the command cannot be interpreted
	for _, b := range cfgProgramBools {
		if r, ok := get(b.key); ok {
			if v, ok := l.boolVal(r); ok {
				*b.field(p) = v
			} else if b.key == "useshell" {
				badUseShell = true
			}
		}
	}
	if r, ok := get("autorestart"); ok {
		l.autorestartVal(r, p)
	}
	if r, ok := get("exit_codes"); ok {
		p.ExitCodes, _ = l.intListVal(r, 0, 255, "an exit status from 0 to 255")
	}
	if r, ok := get("stop_signal"); ok {
		p.StopSignal, _ = l.signalVal(r)
	}
	if r, ok := get("reload_signal"); ok {
		p.ReloadSignal, _ = l.signalVal(r)
	}
	if r, ok := get("umask"); ok {
		p.Umask, _ = l.umaskVal(r)
	}
	for _, k := range rlimitKeys {
		if r, ok := get(k.key); ok && !r.invalid {
			if lim, err := parseRlimit(r.value); err != nil {
				l.addAt(r, "%s = %s: %v; write N (soft and hard), SOFT:HARD or unlimited", r.key, r.value, err)
			} else {
				if p.Rlimits == nil {
					p.Rlimits = map[int]syscall.Rlimit{}
				}
				p.Rlimits[k.resource] = lim
			}
		}
	}
	if r, ok := get("numprocs"); ok {
		if n, ok := l.intVal(r, "a count from 1 to 1000"); ok {
			if n < 1 || n > 1000 {
				l.addAt(r, "numprocs = %d: set it from 1 to 1000", n)
			} else {
				p.Numprocs = int(n)
			}
		}
	}
	if r, ok := get("ready"); ok {
		p.Ready, _ = l.readyVal(r)
	}
	if r, ok := get("depends_on"); ok {
		p.DependsOn, _ = l.namesVal(r)
	}
	if r, ok := get("maxrestarts"); ok {
		if n, ok := l.intVal(r, "a count ≥ 0 (0 = unlimited)"); ok {
			p.MaxRestarts = int(n)
		}
	}
	for _, d := range cfgProgramDurations {
		if r, ok := get(d.key); ok {
			if v, ok := l.secondsVal(r, d.positive); ok {
				*d.field(p) = v
			}
		}
	}

	// Files.
	// Without pidfile and stdout, the program's are in the state directory
	// (pids/NAME.pid, logs/NAME.log: see Config.fillDefaults).
	if r, ok := get("pidfile"); ok {
		p.Pidfile, _ = l.pathVal(r, pathRelHome, "")
	}
	if r, ok := get("stdout"); ok {
		p.Stdout, _ = l.pathVal(r, pathAbs, "")
	}
	p.Stderr = p.Stdout
	if r, ok := get("stderr"); ok && !strings.EqualFold(strings.TrimSpace(r.value), "stdout") {
		if v, ok := l.pathVal(r, pathAbs, ""); ok && v != "" {
			p.Stderr = v
		}
	}

	if r, ok := get("directory"); ok {
		p.Dir, _ = l.pathVal(r, pathRelHome, "")
	}
	if r, ok := get("env_file"); ok && strings.TrimSpace(r.value) != "" {
		if path, ok := l.pathVal(r, pathRelHome, ""); ok {
			p.EnvFile = path
			if program {
				l.checkEnvFile(r, path)
			}
		}
	}

	if r, ok := get("email_alerts"); ok {
		p.EmailAlerts, _ = l.emailsVal(r)
	}

	// Environment: the defaults' entries first, overridden key-wise.
	idx := map[string]int{}
	var envs []rawVal
	if ds != nil {
		envs = append(envs, ds.env...)
	}
	for _, e := range append(envs, s.env...) {
		if i, ok := idx[e.key]; ok {
			p.Env[i] = e.key + "=" + e.value
			continue
		}
		idx[e.key] = len(p.Env)
		p.Env = append(p.Env, e.key+"="+e.value)
	}

	l.resolveMonitor(p, getMon, header)
	l.resolveChecks(p, getMon)
	l.resolveHook(p, getHook, header)

	// proctitle_re, then the command (which needs to know whether it is set).
	explicitTitle := false
	if r, ok := get("proctitle_re"); ok && !r.invalid {
		explicitTitle = true
		if r.value == "" {
			l.addAt(r, "proctitle_re is empty; remove the key to use the default (built from the command) or set a regexp")
		} else if re, err := compileProcTitleRE(r.value); err != nil {
			l.addAt(r, "proctitle_re does not compile: %v (Go RE2 syntax: no lookaround or backreferences)", err)
		} else {
			p.ProcTitleRE = re
		}
	}
	r, ok := get("command")
	switch {
	case !program:
	case !ok:
		missing("command", "COMMAND (the program to run and its arguments)")
	case r.invalid:
	case badUseShell:
		p.Command = r.value
	default:
		p.Command = r.value
		l.resolveCommand(p, r, explicitTitle)
	}
	return p
}

// resolveMonitor reads the [[Monitor]] keys.
func (l *configLoader) resolveMonitor(p *Program, get func(string) (rawVal, bool), header string) {
	for _, d := range cfgMonitorDurations {
		if r, ok := get(d.key); ok {
			if v, ok := l.secondsVal(r, d.positive); ok {
				*d.field(p) = v
			}
		}
	}
	if r, ok := get("rss_limit"); ok {
		if n, ok := l.intVal(r, "a size in kB ≥ 0 (0 = no limit)"); ok {
			p.RSSLimitKB = n
		}
	}
	limitR, hasLimit := get("activityfile_limit")
	if hasLimit {
		if v, ok := l.secondsVal(limitR, true); ok {
			p.ActivityFileLimit = v
		}
	}
	if r, ok := get("activityfile"); ok {
		p.ActivityFile, _ = l.pathVal(r, pathAbs, "")
		if p.ActivityFile != "" && !hasLimit {
			l.addAt(r, "activityfile is set but activityfile_limit is not: add activityfile_limit = SECONDS "+
				"(the longest the file may stay untouched) to the [[Monitor]] of %s", header)
		}
	}
}

// resolveCommand sets p.Args from command r; explicitTitle says whether
// proctitle_re is set.
func (l *configLoader) resolveCommand(p *Program, r rawVal, explicitTitle bool) {
	if !p.UseShell {
		args, err := l.sh.Args(r.value, l.home)
		if err != nil {
			l.addAt(r, "%s", err)
			return
		}
		p.Args = args
	} else {
		args, why, pipeline, err := l.sh.ShellArgs(r.value, l.home)
		switch {
		case err != nil:
			l.addAt(r, "%s", err)
			return
		case pipeline && !explicitTitle:
			l.addAt(r, "a useshell pipeline needs an explicit proctitle_re (its last command is the sink); "+
				"set proctitle_re to a regexp matching the title of the process to manage")
			return
		case args == nil && why != "" && !explicitTitle:
			l.addAt(r, "cannot tell which process this useshell command runs: %s; set proctitle_re to a regexp "+
				"matching its title", why)
			return
		}
		p.Args = args
	}
	if !explicitTitle && len(p.Args) > 0 {
		p.title = &titleMatch{}
	}
}
