package usrsvc

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc/internal/home"
)

// This file builds configurations in Go, without a file: NewConfig,
// NewProgram, Config.Add, and [NewManager], which checks a Config
// however it was built.

// NewConfig returns a configuration without a file and without programs:
// add them with [Config.Add]. Its state directory is the default one,
// ~/.local/state/usrsvc , which usrsvc and usrsvcd also use for
// a configuration file without state_dir; set Main.StateDir to keep this
// configuration's programs apart. NewConfig does no I/O beyond finding the
// home directory; when there is none, StateDir stays "" and Validate says
// what to set.
func NewConfig() *Config {
	cfg := &Config{LogFormat: "text"}
	if h, err := home.Dir(); err == nil {
		cfg.StateDir = filepath.Join(h, ".local", "state", "usrsvc")
	}
	return cfg
}

// NewProgram returns a program named name that runs argv (argv[0] is
// looked up in the program's PATH, as a command line's first word is),
// with every default a [Program:NAME] section gets: enabled, autostart,
// autorestart, autopid, scan_for_process, inherit_env, success_seconds 2 s,
// term_to_kill_seconds 8 s, monitor_after 30 s, monitor_interval 5 s; its
// process is found by the default proctitle_re (argv joined by spaces, as
// the whole title or its tail). Set fields to change them before
// [Config.Add].
//
// Pidfile, Stdout and Stderr may stay empty: Add puts them in the
// configuration's state directory (pids/NAME.pid and logs/NAME.log), and the
// first start creates those directories. Dir, the working directory, is
// the home directory when empty.
func NewProgram(name string, argv ...string) *Program {
	pc := newProgram(name, "", 0)
	pc.Args = slices.Clone(argv)
	pc.Command = quoteArgs(argv)
	return pc
}

// quoteArgs writes argv as a POSIX shell command line, for messages and
// alerts: words made only of safe characters as they are, others quoted.
func quoteArgs(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@%=") == "" {
			words[i] = a
		} else {
			words[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(words, " ")
}

// Add adds pc to the configuration, keeping Programs sorted by name (the
// order [Config.Program] relies on). It fills in what pc leaves empty and
// has a default (see [NewProgram]), then checks pc as validate
// does; on any problem it returns a *ConfigError and c is unchanged. A
// name already in c is an error.
func (c *Config) Add(pc *Program) error {
	if pc == nil {
		return &ConfigError{Problems: []string{"Add(nil): no program given; build one with usrsvc.NewProgram(name, argv...)"}}
	}
	if c.Program(pc.Name) != nil {
		return configError([]problem{{File: pc.File, Line: pc.Line,
			Msg: fmt.Sprintf("program %q is already in the configuration: program names must be unique", pc.Name)}})
	}
	c.fillDefaults(pc)
	if ps := c.checkProgram(pc); len(ps) > 0 {
		return configError(ps)
	}
	i, _ := slices.BinarySearchFunc(c.Programs, pc.Name, func(p *Program, name string) int {
		return strings.Compare(p.Name, name)
	})
	c.Programs = slices.Insert(c.Programs, i, pc)
	return nil
}

// fillDefaults gives a program built in Go what a configuration file
// always has: a pidfile and log files (in the state directory), a default
// title matcher, and success_seconds and monitor_interval (which must be
// above 0) when they are 0.
func (c *Config) fillDefaults(pc *Program) {
	if c.StateDir != "" && validProgramName(pc.Name) {
		if pc.Pidfile == "" {
			pc.Pidfile = filepath.Join(c.StateDir, "pids", pc.Name+".pid")
			pc.ownDirs = true
		}
		if pc.Stdout == "" {
			pc.Stdout = filepath.Join(c.StateDir, "logs", pc.Name+".log")
			pc.ownDirs = true
		}
	}
	if pc.Stderr == "" {
		pc.Stderr = pc.Stdout
	}
	if pc.SuccessSeconds == 0 {
		pc.SuccessSeconds = 2 * time.Second
	}
	if pc.MonitorInterval == 0 {
		pc.MonitorInterval = 5 * time.Second
	}
	if pc.ProcTitleRE == nil && pc.title == nil {
		pc.title = &titleMatch{}
	}
	if pc.Command == "" && !pc.UseShell {
		pc.Command = quoteArgs(pc.Args)
	}
}

// validate checks the configuration as usrsvcd checkconfig checks a file:
// every program's name (unique, letters, digits, '_', '.' and '-', not
// "all"), its command, its paths (absolute), its durations and counts (not
// negative; success_seconds and monitor_interval above 0), its environment
// and its monitor, and the state directory. It returns nil or a
// *ConfigError listing every problem, with file and line for the programs
// read from a file. It does no I/O and changes nothing. A Config from
// [LoadConfig] is always valid; [NewManager] refuses one that is not.
func (c *Config) validate() error {
	var ps []problem
	if c.StateDir == "" {
		ps = append(ps, problem{File: c.Path, Msg: "no state directory: set Main.StateDir (state_dir) to an absolute path, " +
			"or set $HOME (the default is ~/.local/state/usrsvc)"})
	} else if !filepath.IsAbs(c.StateDir) {
		ps = append(ps, problem{File: c.Path, Msg: fmt.Sprintf("state_dir %q must be an absolute path", c.StateDir)})
	}
	seen := map[string]*Program{}
	for i, pc := range c.Programs {
		if pc == nil {
			ps = append(ps, problem{File: c.Path, Msg: fmt.Sprintf("Programs[%d] is nil: build programs with usrsvc.NewProgram and add them with Config.Add", i)})
			continue
		}
		if first := seen[pc.Name]; first != nil {
			where := ""
			if first.File != "" {
				where = fmt.Sprintf(" (first defined at %s:%d)", first.File, first.Line)
			}
			ps = append(ps, problem{File: pc.File, Line: pc.Line,
				Msg: fmt.Sprintf("duplicate program %q%s: program names must be unique", pc.Name, where)})
			continue
		}
		seen[pc.Name] = pc
		ps = append(ps, c.checkProgram(pc)...)
	}
	if len(ps) == 0 {
		return nil
	}
	return configError(ps)
}

// checkProgram lists the problems of one program.
func (c *Config) checkProgram(pc *Program) []problem {
	var ps []problem
	add := func(format string, args ...any) {
		ps = append(ps, problem{File: pc.File, Line: pc.Line, Msg: fmt.Sprintf("program %q: ", pc.Name) + fmt.Sprintf(format, args...)})
	}
	switch {
	case pc.Name == "":
		add("no name: every program needs one (usrsvc.NewProgram(name, argv...))")
	case !validProgramName(pc.Name):
		add("the name may only hold letters, digits, '_', '.' and '-'")
	case strings.EqualFold(pc.Name, "all"):
		add(`"all" means every program on the command line: choose another name`)
	case len(pc.Name) > maxProgramName:
		add("the name is %d characters long; at most %d fit the file names of the state directory", len(pc.Name), maxProgramName)
	}

	// What to run, and how its process is recognised.
	switch {
	case pc.UseShell && strings.TrimSpace(pc.Command) == "":
		add("UseShell is set but Command is empty: set Command to the shell command line to run")
	case !pc.UseShell && len(pc.Args) == 0:
		add("nothing to run: set Args to the program and its arguments (usrsvc.NewProgram(name, argv...))")
	case !pc.UseShell && pc.Args[0] == "":
		add("Args[0], the program to run, is empty")
	}
	for _, a := range pc.Args {
		if strings.IndexByte(a, 0) >= 0 {
			add("an argument holds a NUL byte, which no program can receive")
			break
		}
	}
	if strings.IndexByte(pc.Command, 0) >= 0 {
		add("Command holds a NUL byte")
	}
	if pc.ProcTitleRE == nil && len(pc.Args) == 0 {
		add("cannot tell which process is the program: set ProcTitleRE, or Args (the default proctitle_re is built from them)")
	}

	// Files.
	for _, f := range []struct{ what, path string }{
		{"Pidfile (pidfile)", pc.Pidfile}, {"Stdout (stdout)", pc.Stdout}, {"Stderr (stderr)", pc.Stderr},
	} {
		switch {
		case f.path == "":
			add("%s is empty: set it to an absolute path (Config.Add puts it in the state directory)", f.what)
		case !filepath.IsAbs(f.path):
			add("%s %q must be an absolute path", f.what, f.path)
		case strings.IndexByte(f.path, 0) >= 0:
			add("%s holds a NUL byte", f.what)
		}
	}
	if pc.Dir != "" && !filepath.IsAbs(pc.Dir) {
		add("Dir (directory) %q must be an absolute path", pc.Dir)
	}

	// Durations and counts.
	for _, d := range []struct {
		what     string
		v        time.Duration
		positive bool
	}{
		{"SuccessSeconds (success_seconds)", pc.SuccessSeconds, true},
		{"TermToKill (term_to_kill_seconds)", pc.TermToKill, false},
		{"RestartDelay (restart_delay)", pc.RestartDelay, false},
		{"MonitorAfter (monitor_after)", pc.MonitorAfter, false},
		{"MonitorInterval (monitor_interval)", pc.MonitorInterval, true},
		{"ReadyTimeout (ready_timeout)", pc.ReadyTimeout, false},
		{"CheckTimeout (check_timeout)", pc.CheckTimeout, false},
		{"HookTimeout (timeout of [[Hook]])", pc.HookTimeout, false},
	} {
		switch {
		case d.v < 0:
			add("%s is negative (%v): set it to 0 or more", d.what, d.v)
		case d.positive && d.v == 0:
			add("%s is 0: set it above 0", d.what)
		case d.v > time.Duration(maxConfigSeconds)*time.Second:
			add("%s is too large (%v): at most %.0f seconds", d.what, d.v, float64(maxConfigSeconds))
		}
	}
	if pc.MaxRestarts < 0 {
		add("MaxRestarts (maxrestarts) is negative (%d): 0 means unlimited", pc.MaxRestarts)
	}
	if pc.RSSLimitKB < 0 {
		add("RSSLimitKB (rss_limit) is negative (%d): 0 disables it", pc.RSSLimitKB)
	}
	ps = append(ps, c.checkControls(pc, add)...)
	if pc.ActivityFile != "" {
		if !filepath.IsAbs(pc.ActivityFile) {
			add("ActivityFile (activityfile) %q must be an absolute path", pc.ActivityFile)
		}
		if pc.ActivityFileLimit <= 0 {
			add("ActivityFile is set but ActivityFileLimit (activityfile_limit) is not above 0")
		}
	}

	// Environment and alerts.
	for _, e := range pc.Env {
		key, value, ok := strings.Cut(e, "=")
		if !ok || !validEnvName(key) {
			add("environment entry %q is not KEY=VALUE with a valid name (letters, digits and _, not starting with a digit)", e)
		}
		if strings.IndexByte(value, 0) >= 0 {
			add("environment variable %s holds a NUL byte", key)
		}
	}
	for _, a := range pc.EmailAlerts {
		if a == nil || a.Address == "" {
			add("EmailAlerts holds an empty address")
		} else if strings.ContainsAny(a.Address+a.Name, "\r\n") {
			add("email address %q holds a line break", a.Address)
		}
	}
	return ps
}
