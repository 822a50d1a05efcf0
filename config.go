package usrsvc

import (
	"errors"
	"net/mail"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc/internal/configobj"
)

// Config is a configuration: the [Main] section and every program, with
// DefaultSettings applied and every value typed and defaulted. Read one
// from files with [LoadConfig], or build one in Go with [NewConfig],
// [NewProgram] and [Config.Add]; [Config.Validate] checks either.
type Config struct {
	// Path is the absolute path of the main config file; "" for a
	// configuration built in Go.
	Path string
	// Files lists every file loaded, the main file first, then config_dir's
	// *.cfg files in name order.
	Files []string
	// Main is the [Main] section.
	Main MainConfig
	// Web is the [Web] section (usrsvcweb's settings), defaulted when absent.
	Web WebConfig
	// Programs holds every [Program:NAME] section, sorted by name.
	Programs []*ProgramConfig
	// Broken is set only by [LoadConfigPartial] for a configuration with
	// problems: the programs whose section has problems, sorted by name,
	// resolved as far as they could be, each with its Problems. Programs
	// then holds only the valid ones.
	Broken []*ProgramConfig
}

// MainConfig is the [Main] section of the main config file.
type MainConfig struct {
	Pidfile      string // usrsvcd's own pidfile (absolute)
	ConfigDir    string // absolute; "" when not set
	StateDir     string // absolute; default ~/.local/state/usrsvc
	DaemonStdout string // usrsvcd_stdout, absolute; "" = default (a log file in StateDir when detached)
	DaemonStderr string // usrsvcd_stderr, absolute; "" = same as stdout (also when set to "stdout")
	SendmailPath string // "" = auto (/usr/sbin/sendmail, /usr/bin/sendmail, then $PATH)
	LogFormat    string // "text" or "json"
	Line         int    // line of the [Main] header
}

// ProgramConfig is one program: a [Program:NAME] section resolved (defaults
// applied, every key typed), or a program defined in Go with [NewProgram].
// Fields hold the documented defaults when the key is absent.
type ProgramConfig struct {
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
	// the home directory ([HomeDir]); Config.Add puts an empty one in the
	// state directory.
	Pidfile string
	Stdout  string // absolute
	Stderr  string // absolute; equal to Stdout when stderr = stdout (the default)
	// Dir is the program's working directory (the directory key), absolute;
	// "" means the home directory ([HomeDir]). A relative executable
	// path in the command is relative to it.
	Dir string
	// ownDirs: Pidfile or Stdout were put in the state directory by
	// Config.Add, whose directories the first start creates.
	ownDirs bool

	Enabled        bool // default true
	AutoPid        bool // default true
	ScanForProcess bool // default true
	// ProcTitleRE is proctitle_re as set in the config; nil when the
	// default applies (Args joined by spaces, the whole title or
	// its tail after '/' or ' '), which MatchTitle tests without a regexp.
	// TitleRegexp returns the regexp in force either way.
	ProcTitleRE *regexp.Regexp
	// ProcTitleExplicit is true when proctitle_re was set in the config.
	ProcTitleExplicit bool
	// titleLiteral is the default proctitle_re's literal (Args joined).
	titleLiteral string
	// defaultRE compiles the default proctitle_re on first use.
	defaultRE *lazyRegexp

	Autostart    bool          // default true
	Autorestart  bool          // default true
	MaxRestarts  int           // default 0 = unlimited
	RestartDelay time.Duration // default 0
	// SuccessSeconds is success_seconds, default 2 s.
	//lint:ignore ST1011 named after the success_seconds key; the name is shared API
	SuccessSeconds time.Duration
	TermToKill     time.Duration // term_to_kill_seconds, default 8 s

	InheritEnv bool     // default true
	Env        []EnvVar // [[Env]], in file order (defaults first, overridden key-wise)

	Defaults    string          // the DefaultSettings name, "" if none
	EmailAlerts []*mail.Address // validated addresses

	Monitor MonitorConfig // [[Monitor]] / [[Monitoring]]

	// Problems are, for a program of Config.Broken, the problems of its
	// section and of its DefaultSettings; nil for a valid program.
	Problems []Problem
	// findable: despite Problems, stop and status can act (see Findable).
	findable bool
}

// EnvVar is one entry of an [[Env]] subsection.
type EnvVar struct {
	Key, Value string
}

// MonitorConfig is a program's [[Monitor]] subsection.
type MonitorConfig struct {
	After             time.Duration // monitor_after, default 30 s; 0 = from start
	Interval          time.Duration // monitor_interval, default 5 s
	ActivityFile      string        // absolute; "" disables
	ActivityFileLimit time.Duration // required when ActivityFile is set
	RSSLimitKB        int64         // rss_limit in kB of private memory; 0 disables
}

// DefaultConfigPath is the main config file used when none is given:
// $USRSVC_CONFIG if set, else $HOME/usrsvc.cfg ([HomeDir] when $HOME is
// unset).
func DefaultConfigPath() string {
	if p := os.Getenv("USRSVC_CONFIG"); p != "" {
		return p
	}
	home := os.Getenv("HOME")
	if home == "" {
		home, _ = HomeDir()
	}
	return filepath.Join(home, "usrsvc.cfg")
}

// HomeDir is the current user's home directory: $HOME when it names an
// existing directory (login shells, cron, ssh and systemd's User= all set it
// to the account's home), else the passwd entry's (os/user.Current). It is
// what "~" means in the config, the default state directory's base, and the
// programs' default working directory. $HOME wins so that an operator (or a test)
// can run a whole usrsvc world in another directory; the passwd entry keeps
// things working where HOME is unset.
func HomeDir() (string, error) {
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		if st, err := os.Stat(h); err == nil && st.IsDir() {
			return h, nil
		}
	}
	if u, err := user.Current(); err == nil && filepath.IsAbs(u.HomeDir) {
		return u.HomeDir, nil
	}
	return "", errors.New("no home directory: the current user has no passwd entry and $HOME is not an absolute path")
}

// Program returns the program named name (names are case-sensitive), or nil.
func (c *Config) Program(name string) *ProgramConfig {
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

// Equal reports whether p and q have the same settings; where they are
// written (File, Line) does not count.
func (p *ProgramConfig) Equal(q *ProgramConfig) bool {
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
	a.defaultRE, b.defaultRE = nil, nil
	return ra == rb && reflect.DeepEqual(a, b)
}

// Names returns the program names, sorted.
func (c *Config) Names() []string {
	names := make([]string, len(c.Programs))
	for i, p := range c.Programs {
		names[i] = p.Name
	}
	return names
}

// LoadConfig reads, checks and resolves the configuration whose main file
// is path ("" means [DefaultConfigPath]), with every file of its config_dir.
// When anything is wrong it returns a nil Config and a *ConfigError listing
// every problem found, each with its file and line; a bad input never
// panics. When the system runs out of something while reading (too many
// open files) the error wraps [ErrResource] instead: the configuration is
// not at fault, and trying again may work.
//
// Rules beyond the syntax (package internal/configobj):
//   - Section keywords (Main, Program, DefaultSettings, Env, Monitor,
//     Monitoring) and keys are matched case-insensitively; program and
//     DefaultSettings names, and [[Env]] keys, are case-sensitive.
//   - [Main] exists only in the main file, and exactly once there.
//   - config_dir, when relative, is relative to the main file's directory;
//     its *.cfg files are loaded by name, skipping dotfiles (and the main
//     file, should config_dir contain it). A missing config_dir is an error.
//   - "~" and "~/…" in paths are the home directory ([HomeDir]). stdout,
//     stderr, activityfile, state_dir, usrsvcd_stdout, usrsvcd_stderr,
//     sendmail_path and [Main] pidfile must be absolute; a program's
//     pidfile (and directory) may be relative: it is then relative to the
//     home directory, as it was for the original.
//   - A program with defaults = NAME takes every key it does not set from
//     [DefaultSettings:NAME]; [[Env]] and [[Monitor]] merge key by key.
//   - The main file, config_dir and its files must not be writable by group
//     or others, nor owned by another user than the current one or root
//     (a config another user can change could run their commands as you).
func LoadConfig(path string) (*Config, error) {
	l := &configLoader{rank: map[string]int{}}
	cfg := l.load(path)
	if l.resErr != nil {
		return nil, l.resErr
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// load reads the configuration whose main file is path into a Config built
// from everything that could be read, recording every problem in l.
func (l *configLoader) load(path string) *Config {
	if path == "" {
		path = DefaultConfigPath()
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	l.home, l.homeErr = HomeDir()
	cfg := &Config{Path: path}

	mainFile := l.readFile(path, true)
	if mainFile == nil {
		cfg.Main = l.fallbackMain()
		return cfg
	}
	cfg.Files = []string{path}
	files := []*configobj.File{mainFile}
	dir, r, ok := l.resolveMain(cfg, mainFile)
	l.resolveWeb(cfg, mainFile)
	if ok && dir != "" {
		for _, p := range l.configDirFiles(dir, r, path) {
			if f := l.readFile(p, false); f != nil {
				cfg.Files = append(cfg.Files, p)
				files = append(files, f)
			}
		}
	}

	// Every Program and DefaultSettings section, in load order.
	var progs []*sectionRef
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
				if f != mainFile {
					l.add(f.Name, sec.Line, "[Web] is only allowed in the main config file %s; move it there", path)
				}
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
				l.add(f.Name, sec.Line, "unknown section [%s]: sections are [Main], [Web], [Program:NAME] and "+
					"[DefaultSettings:NAME]%s", sec.Name,
					cfgDidYouMean(strings.TrimSpace(strings.SplitN(sec.Name, ":", 2)[0]), []string{"Main", "Web", "Program", "DefaultSettings"}))
			}
		}
	}

	for _, name := range dsNames {
		l.resolveProgram(defaults[name], nil, false)
	}
	byName := map[string]*ProgramConfig{}
	for _, s := range progs {
		var ds *sectionRef
		if r, ok := s.keys["defaults"]; ok && !r.invalid && strings.TrimSpace(r.value) != "" {
			n := strings.TrimSpace(r.value)
			if ds = defaults[n]; ds == nil {
				l.addAt(r, "defaults = %s names no [DefaultSettings:%s] section%s", n, n, cfgDidYouMean(n, dsNames))
			}
		}
		p := l.resolveProgram(s, ds, true)
		l.programs = append(l.programs, loadedProgram{s, ds, p})
		if first, dup := byName[p.Name]; dup {
			l.add(p.File, p.Line, "duplicate program [Program:%s]: first defined at %s:%d; program names must be unique "+
				"across all config files", p.Name, first.File, first.Line)
			continue
		}
		byName[p.Name] = p
		cfg.Programs = append(cfg.Programs, p)
	}
	sort.Slice(cfg.Programs, func(i, j int) bool { return cfg.Programs[i].Name < cfg.Programs[j].Name })
	return cfg
}

// resolveMain reads the main file's [Main] section into cfg.Main. It
// returns config_dir (absolute, "" when unset) and its key; ok is false when
// config_dir is set but unusable.
func (l *configLoader) resolveMain(cfg *Config, f *configobj.File) (string, rawVal, bool) {
	main := l.singleSection(f, kwMain, "Main")
	m := &cfg.Main
	*m = l.fallbackMain()
	if main == nil {
		l.add(f.Name, 0, "no [Main] section: add one with at least pidfile = PATH (usrsvcd's own pidfile)")
		return "", rawVal{}, false
	}
	m.Line = main.Line
	for _, sub := range main.Subs {
		l.add(f.Name, sub.Line, "[Main] has no subsections; remove [[%s]]", sub.Name)
	}
	keys := map[string]rawVal{}
	l.collectKeys(f.Name, main, keys, "[Main]", cfgMainKeys, nil, cfgProgramKeys, "a [Program:NAME] section")
	baseDir := filepath.Dir(cfg.Path)

	if r, ok := keys["pidfile"]; !ok || (!r.invalid && strings.TrimSpace(r.value) == "") {
		l.add(f.Name, main.Line, "[Main] is missing the required key pidfile: add pidfile = PATH (usrsvcd's own pidfile, absolute)")
	} else {
		m.Pidfile, _ = l.pathVal(r, pathAbs, "")
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
	r, ok := keys["config_dir"]
	if !ok || strings.TrimSpace(r.value) == "" {
		return "", r, true
	}
	dir, ok := l.pathVal(r, pathRelDir, baseDir)
	m.ConfigDir = dir
	return dir, r, ok
}
