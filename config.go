package usrsvc

import (
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/home"
)

// Config is a configuration: the [Main] section and every program, with
// DefaultSettings applied and every value typed and defaulted. Read one
// from files with [LoadConfig], or build one in Go with [NewConfig],
// [NewProgram] and [Config.Add]. The [Web] section belongs to usrsvcweb
// (package web reads it); LoadConfig only checks that it is in the main
// file.
type Config struct {
	// Path is the absolute path of the main config file; "" for a
	// configuration built in Go.
	Path string
	// Files lists every file loaded, the main file first, then config_dir's
	// *.cfg files in name order.
	Files []string

	// The [Main] section.
	DaemonPidfile string // pidfile: usrsvcd's own pidfile (absolute)
	ConfigDir     string // absolute; "" when not set
	StateDir      string // absolute; default ~/.local/state/usrsvc
	DaemonStdout  string // usrsvcd_stdout, absolute; "" = default (a log file in StateDir when detached)
	DaemonStderr  string // usrsvcd_stderr, absolute; "" = same as stdout (also when set to "stdout")
	SendmailPath  string // "" = auto (/usr/sbin/sendmail, /usr/bin/sendmail, then $PATH)
	LogFormat     string // "text" or "json"
	// StopRemoved (stop_removed, default false): a reread stops the
	// programs it removes from the configuration that still run. By
	// default they keep running, unsupervised, and are listed by
	// usrsvc status all as removed.
	StopRemoved bool
	MainLine    int // line of the [Main] header

	// Programs holds every [Program:NAME] section (a section with numprocs
	// gives one program per instance), sorted by name.
	Programs []*Program
	// Groups are the names that address several programs: every
	// [Group:NAME] section (programs = ...) and every section with
	// numprocs (its instances), with their programs sorted by name.
	Groups map[string][]string
	// Broken lists, when LoadConfig returns a configuration with problems
	// along with its *ConfigError, the programs whose own section has
	// problems, sorted by name, resolved as far as they could be, each
	// with its Problems. Programs then holds only the valid ones.
	Broken []*Program
}

// Program is one program: a [Program:NAME] section resolved (defaults
// applied, every key typed), or a program defined in Go with [NewProgram].
// Fields hold the documented defaults when the key is absent.
type Program struct {
	Name string // the NAME of [Program:NAME] (case-sensitive)
	File string // file that defines the section
	Line int    // line of the [Program:NAME] header

	Command string // the command line as written
	// Args is the argv: Command split like a POSIX shell (without useshell),
	// or the argv of the last simple command of the line (useshell), used
	// for the default proctitle_re. With useshell it is nil when that argv
	// is only known when the shell runs (proctitle_re is then required).
	Args     []string
	UseShell bool

	// Pidfile is absolute. A relative pidfile in the config is relative to
	// the home directory; an empty one is put in the state directory.
	Pidfile string
	Stdout  string // absolute
	Stderr  string // absolute; equal to Stdout when stderr = stdout (the default)
	// Dir is the program's working directory (the directory key), absolute;
	// "" means the home directory. A relative executable path in the
	// command is relative to it.
	Dir string
	// ownDirs: Pidfile or Stdout were put in the state directory by
	// Config.Add, whose directories the first start creates.
	ownDirs bool

	Enabled        bool // default true
	AutoPid        bool // default true
	ScanForProcess bool // default true
	// ProcTitleRE is proctitle_re as set in the config; nil when the
	// default applies: the whole title is the command's argv[0] (as
	// written or resolved in the program's PATH, after a #! script's
	// interpreter) followed by exactly its arguments.
	ProcTitleRE *regexp.Regexp
	// title is the default match, computed on first use.
	title *titleMatch

	Autostart   bool // default true
	Autorestart bool // default true (autorestart = true or unexpected)
	// RestartUnexpected (autorestart = unexpected) restarts the program
	// only after a signal or an exit status not in ExitCodes: a clean exit
	// leaves it down, in state exited.
	RestartUnexpected bool
	// ExitCodes are the expected exit statuses (exit_codes); nil means 0.
	ExitCodes    []int
	MaxRestarts  int           // default 0 = unlimited
	RestartDelay time.Duration // default 0
	// SuccessSeconds is success_seconds, default 2 s.
	//lint:ignore ST1011 named after the success_seconds key; the name is shared API
	SuccessSeconds time.Duration
	TermToKill     time.Duration // term_to_kill_seconds, default 8 s
	// StopSignal is the first signal of a stop (stop_signal); 0 means
	// SIGTERM. SIGKILL follows after TermToKill.
	StopSignal syscall.Signal
	// StopGroup (stop_group) makes a stop signal every process of the
	// program's session (the launcher starts it in a session of its own),
	// not only the matched one, and wait until none is left.
	StopGroup bool
	// ReloadSignal (reload_signal) is what a reload sends; 0: the program
	// cannot be reloaded.
	ReloadSignal syscall.Signal

	// Umask is the program's umask (umask); nil: the caller's.
	Umask *os.FileMode
	// Rlimits are the resource limits set before the exec (limit_nofile,
	// limit_nproc, limit_core, limit_as, limit_memlock), by resource
	// (syscall.RLIMIT_NOFILE, ...); RLIM_INFINITY is unlimited.
	Rlimits map[int]syscall.Rlimit

	InheritEnv bool     // default true
	Env        []string // [[Env]] as KEY=VALUE, in file order (defaults first, overridden key-wise)
	// EnvFile (env_file) is a file of KEY=VALUE lines, read at each start:
	// the inherited environment < EnvFile < Env.
	EnvFile string

	// Numprocs (numprocs) is how many instances the program's section
	// makes: NAME_00, NAME_01, ... (1: the program itself); ProcessNum is
	// this instance's number, which %(process_num)d expands to and
	// USRSVC_PROCESS_NUM holds.
	Numprocs   int
	ProcessNum int
	// siblingPidfiles are the pidfiles of the other instances of its
	// numprocs section: a scan never adopts a process one of them names
	// (instances often run the very same command line).
	siblingPidfiles []string

	// Ready (ready) says when a start succeeds: "tcp:HOST:PORT" (a
	// connection is accepted), "http:URL" (a GET answers 2xx or 3xx),
	// "log:REGEX" (a new line of its output matches) or "notify" (it sends
	// READY=1 to $NOTIFY_SOCKET); "" means after SuccessSeconds.
	Ready string
	// ReadyTimeout (ready_timeout) bounds the wait for Ready; 0 means 60 s.
	ReadyTimeout time.Duration
	// DependsOn (depends_on) names the programs and groups started, and
	// ready, before this one, and stopped after it.
	DependsOn []string

	Defaults    string          // the DefaultSettings name, "" if none
	EmailAlerts []*mail.Address // validated addresses

	// The [[Monitor]] (or [[Monitoring]]) subsection.
	MonitorAfter      time.Duration // monitor_after, default 30 s; 0 = from start
	MonitorInterval   time.Duration // monitor_interval, default 5 s
	ActivityFile      string        // absolute; "" disables
	ActivityFileLimit time.Duration // required when ActivityFile is set
	RSSLimitKB        int64         // rss_limit in kB of private memory; 0 disables
	// Health checks: healthy when a GET of HTTPCheck answers 2xx or 3xx (or
	// one of HTTPExpect) and its first 64 KiB match HTTPBodyRE, when
	// TCPCheck accepts a connection, when ExecCheck exits 0 — each within
	// CheckTimeout (0: 5 s). CheckFailures (0: 3) failed checks in a row
	// make the program unhealthy: CheckAction "restart" (or "") restarts
	// it, "alert" only alerts.
	HTTPCheck     string
	HTTPExpect    []int
	HTTPBodyRE    *regexp.Regexp
	TCPCheck      string
	ExecCheck     string
	CheckTimeout  time.Duration
	CheckFailures int
	CheckAction   string

	// The [[Hook]] subsection: HookCommand runs, detached and with the
	// event as one JSON line on its stdin, on each of HookEvents; it is
	// killed after HookTimeout (0: 10 s).
	HookEvents  []string
	HookCommand string
	HookTimeout time.Duration

	// Problems are, for a program of Config.Broken, the problems of its
	// section and of its DefaultSettings ("file:line: message"); nil for a
	// valid program.
	Problems []string
	// findable: despite Problems, stop and status can act (see findable).
	findable bool
}

// Program returns the program named name (names are case-sensitive), or nil.
func (c *Config) Program(name string) *Program {
	i := sort.Search(len(c.Programs), func(i int) bool { return c.Programs[i] != nil && c.Programs[i].Name >= name })
	if i < len(c.Programs) && c.Programs[i] != nil && c.Programs[i].Name == name {
		return c.Programs[i]
	}
	// Programs appended by hand, out of order (Add keeps the order).
	for _, p := range c.Programs {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// SameSettings reports whether p and q configure a program alike: where
// they are written (File, Line) does not count. It tells which programs a
// reread changed.
func (p *Program) SameSettings(q *Program) bool {
	a, b := *p, *q
	a.File, a.Line, b.File, b.Line = "", 0, "", 0
	ra, rb := "", ""
	if a.ProcTitleRE != nil {
		ra = a.ProcTitleRE.String()
	}
	if b.ProcTitleRE != nil {
		rb = b.ProcTitleRE.String()
	}
	a.ProcTitleRE, b.ProcTitleRE = nil, nil
	a.title, b.title = nil, nil
	a.siblingPidfiles, b.siblingPidfiles = nil, nil // follow Numprocs
	return ra == rb && reflect.DeepEqual(a, b)
}

// names returns the program names, sorted.
func (c *Config) names() []string {
	names := make([]string, len(c.Programs))
	for i, p := range c.Programs {
		names[i] = p.Name
	}
	return names
}

// LoadConfig reads, checks and resolves the configuration whose main file
// is path ("" means $USRSVC_CONFIG, else ~/usrsvc.cfg), with every file of
// its config_dir. When anything is wrong it returns a *ConfigError listing
// every problem found, each with its file and line; a bad input never
// panics.
//
// With problems, LoadConfig also returns what still reads, for the
// operations that must not depend on a configuration that loads (stop and
// status: a broken configuration never locks the operator out); a caller
// that wants a valid configuration or nothing just checks err. That
// Config holds:
//   - of [Main], what reads; the state directory falls back to the default
//     (~/.local/state/usrsvc) when state_dir is missing or unusable, and
//     everything is default when the main file cannot be read at all
//     (Files is then empty);
//   - in Programs, every program whose own section, and the
//     [DefaultSettings:NAME] it names, have no problem;
//   - in Broken, every other program, with its Problems.
//
// A problem concerns a program when it lies within the program's section
// (from its header to the next section header of the file, subsections
// included) or within its DefaultSettings section, or when two sections
// define the program. An unusable state_dir concerns every program (their
// locks live there): none is started. A [Manager] built on such a Config
// lets stop and status act on a Broken program when none of its problems
// concerns how its process is found and stopped; start and restart of a
// Broken program fail with an error wrapping [ErrInvalidConfig]; "all"
// covers Broken programs.
//
// A configuration refused for safety (a file or directory writable by group
// or others, or owned by another user) stays refused: the Config is nil.
// So is one the system could not read for want of resources (too many open
// files): the error then wraps [ErrResource], and trying again may work.
//
// Rules beyond the syntax:
//   - Section keywords (Main, Program, DefaultSettings, Env, Monitor,
//     Monitoring) and keys are matched case-insensitively; program and
//     DefaultSettings names, and [[Env]] keys, are case-sensitive.
//   - [Main] exists only in the main file, and exactly once there; so does
//     [Web], whose keys package web reads.
//   - config_dir, when relative, is relative to the main file's directory;
//     its *.cfg files are loaded by name, skipping dotfiles (and the main
//     file, should config_dir contain it). A missing config_dir is an error.
//   - "~" and "~/…" in paths are the home directory. stdout, stderr,
//     activityfile, state_dir, usrsvcd_stdout, usrsvcd_stderr,
//     sendmail_path and [Main] pidfile must be absolute; a program's
//     pidfile (and directory) may be relative: it is then relative to the
//     home directory, as it was for the original.
//   - A program with defaults = NAME takes every key it does not set from
//     [DefaultSettings:NAME]; [[Env]] and [[Monitor]] merge key by key.
//   - The main file, config_dir and its files must not be writable by group
//     or others, nor owned by another user than the current one or root
//     (a config another user can change could run their commands as you).
func LoadConfig(path string) (*Config, error) {
	l := &configLoader{rank: map[string]int{}, partial: true, files: map[string]*fileLayout{}}
	cfg := l.load(path)
	if l.resErr != nil {
		return nil, l.resErr // nothing can be trusted to be whole
	}
	if err := l.err(); err != nil {
		if l.unsafe {
			return nil, err
		}
		l.splitBroken(cfg)
		return cfg, err
	}
	return cfg, nil
}

// load reads the configuration whose main file is path into a Config built
// from everything that could be read, recording every problem in l.
func (l *configLoader) load(path string) *Config {
	if path == "" {
		path = home.ConfigPath()
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	l.home, l.homeErr = home.Dir()
	cfg := &Config{Path: path}

	mainFile := l.readFile(path, true)
	if mainFile == nil {
		l.fallbackMain(cfg)
		return cfg
	}
	cfg.Files = []string{path}
	files := []*configobj.File{mainFile}
	dir, r, ok := l.resolveMain(cfg, mainFile)
	if ok && dir != "" {
		for _, p := range l.configDirFiles(dir, r, path) {
			if f := l.readFile(p, false); f != nil {
				cfg.Files = append(cfg.Files, p)
				files = append(files, f)
			}
		}
	}

	// Every Program, DefaultSettings and Group section, in load order.
	var progs, groups []*sectionRef
	defaults := map[string]*sectionRef{}
	var dsNames []string
	for _, f := range files {
		for _, sec := range f.Sections {
			kw, name, hasName := splitSectionName(sec.Name)
			switch kw {
			case kwMain:
				if f != mainFile {
					l.add(f.Name, sec.Line, "[Main] is only allowed in the main config file %s; move its keys there", path)
				}
			case kwWeb:
				// usrsvcweb's settings: package web reads and checks them.
				if f != mainFile {
					l.add(f.Name, sec.Line, "[Web] is only allowed in the main config file %s; move it there", path)
				}
			case kwGroup:
				if !l.checkName(f.Name, sec, "Group", name, hasName) {
					continue
				}
				groups = append(groups, l.collectGroup(f.Name, sec, name))
			case kwProgram, kwDefaultSettings:
				kind := "Program"
				if kw == kwDefaultSettings {
					kind = "DefaultSettings"
				}
				if !l.checkName(f.Name, sec, kind, name, hasName) {
					continue
				}
				s := l.collectSection(f.Name, sec, kind, name)
				l.sections = append(l.sections, s)
				if kind == "Program" {
					progs = append(progs, s)
				} else if first, dup := defaults[name]; dup {
					l.add(f.Name, sec.Line, "duplicate [DefaultSettings:%s]: first defined at %s:%d; rename or merge them",
						name, first.file, first.line)
				} else {
					defaults[name] = s
					dsNames = append(dsNames, name)
				}
			default:
				l.add(f.Name, sec.Line, "unknown section [%s]: sections are [Main], [Web], [Program:NAME], "+
					"[DefaultSettings:NAME] and [Group:NAME]%s", sec.Name,
					cfgDidYouMean(strings.TrimSpace(strings.SplitN(sec.Name, ":", 2)[0]), []string{"Main", "Web", "Program", "DefaultSettings", "Group"}))
			}
		}
	}

	for _, name := range dsNames {
		l.resolveProgram(defaults[name], nil, false)
	}
	byName := map[string]*Program{}
	for _, s := range progs {
		var ds *sectionRef
		if r, ok := s.keys["defaults"]; ok && !r.invalid && strings.TrimSpace(r.value) != "" {
			n := strings.TrimSpace(r.value)
			if ds = defaults[n]; ds == nil {
				l.addAt(r, "defaults = %s names no [DefaultSettings:%s] section%s", n, n, cfgDidYouMean(n, dsNames))
			}
		}
		for _, inst := range l.instances(s, ds) {
			p := l.resolveProgram(inst.sec, inst.ds, true)
			p.Numprocs, p.ProcessNum = inst.n, inst.num
			l.programs = append(l.programs, loadedProgram{s, ds, p})
			if first, dup := byName[p.Name]; dup {
				l.add(p.File, p.Line, "duplicate program [Program:%s]: first defined at %s:%d; program names must be unique "+
					"across all config files", p.Name, first.File, first.Line)
				continue
			}
			byName[p.Name] = p
			cfg.Programs = append(cfg.Programs, p)
			if inst.n > 1 {
				if cfg.Groups == nil {
					cfg.Groups = map[string][]string{}
				}
				cfg.Groups[s.name] = append(cfg.Groups[s.name], p.Name)
			}
		}
	}
	sort.Slice(cfg.Programs, func(i, j int) bool { return cfg.Programs[i].Name < cfg.Programs[j].Name })
	for _, p := range cfg.Programs {
		cfg.fillDefaults(p)
	}
	for _, s := range progs {
		insts := cfg.Groups[s.name]
		for _, n := range insts {
			p := byName[n]
			for _, o := range insts {
				if o != n {
					p.siblingPidfiles = append(p.siblingPidfiles, byName[o].Pidfile)
				}
			}
		}
	}
	l.resolveGroups(cfg, groups, byName)
	l.checkPidfiles(cfg)
	l.checkDependencies(cfg)
	l.checkPathSafety(cfg) // config_safety.go
	return cfg
}

// resolveMain reads the main file's [Main] section into cfg.Main. It
// returns config_dir (absolute, "" when unset) and its key; ok is false when
// config_dir is set but unusable.
func (l *configLoader) resolveMain(cfg *Config, f *configobj.File) (string, rawVal, bool) {
	main := l.singleSection(f, kwMain, "Main")
	m := cfg
	l.fallbackMain(cfg)
	if main == nil {
		l.add(f.Name, 0, "no [Main] section: add one with at least pidfile = PATH (usrsvcd's own pidfile)")
		return "", rawVal{}, false
	}
	m.MainLine = main.Line
	for _, sub := range main.Subs {
		l.add(f.Name, sub.Line, "[Main] has no subsections; remove [[%s]]", sub.Name)
	}
	keys := map[string]rawVal{}
	l.collectKeys(f.Name, main, keys, "[Main]", cfgMainKeys, nil, cfgProgramKeys, "a [Program:NAME] section")
	baseDir := filepath.Dir(cfg.Path)

	if r, ok := keys["pidfile"]; !ok || (!r.invalid && strings.TrimSpace(r.value) == "") {
		l.add(f.Name, main.Line, "[Main] is missing the required key pidfile: add pidfile = PATH (usrsvcd's own pidfile, absolute)")
	} else {
		m.DaemonPidfile, _ = l.pathVal(r, pathAbs, "")
	}
	if r, ok := keys["state_dir"]; ok && strings.TrimSpace(r.value) != "" {
		if dir, ok := l.pathVal(r, pathAbs, ""); ok {
			m.StateDir = dir
		} else {
			l.stateDirBad = &keyPos{r.file, r.line}
		}
	} else if m.StateDir == "" {
		l.add(f.Name, main.Line, "cannot place the default state_dir (%v): set state_dir = ABSOLUTE PATH", l.homeErr)
	}
	if r, ok := keys["usrsvcd_stdout"]; ok {
		m.DaemonStdout, _ = l.pathVal(r, pathAbs, "")
	}
	if r, ok := keys["usrsvcd_stderr"]; ok && !strings.EqualFold(strings.TrimSpace(r.value), "stdout") {
		m.DaemonStderr, _ = l.pathVal(r, pathAbs, "")
	}
	if r, ok := keys["sendmail_path"]; ok && !strings.EqualFold(strings.TrimSpace(r.value), "auto") {
		m.SendmailPath, _ = l.pathVal(r, pathAbs, "")
	}
	if r, ok := keys["log_format"]; ok && !r.invalid {
		switch v := strings.ToLower(strings.TrimSpace(r.value)); v {
		case "text", "json":
			m.LogFormat = v
		case "":
		default:
			l.addAt(r, "log_format = %q is not a log format; use text or json", r.value)
		}
	}
	if r, ok := keys["stop_removed"]; ok && !r.invalid {
		m.StopRemoved, _ = l.boolVal(r)
	}
	r, ok := keys["config_dir"]
	if !ok || strings.TrimSpace(r.value) == "" {
		return "", r, true
	}
	dir, ok := l.pathVal(r, pathRelDir, baseDir)
	m.ConfigDir = dir
	return dir, r, ok
}
