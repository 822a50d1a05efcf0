package usrsvc

import (
	"net/mail"
	"regexp"
	"time"
)

// Config is a loaded and validated configuration: the [Main] section and
// every program, with DefaultSettings applied and every value typed and
// defaulted. Build one with [LoadConfig].
type Config struct {
	// Path is the absolute path of the main config file.
	Path string
	// Files lists every file loaded, the main file first, then config_dir's
	// *.cfg files in name order.
	Files []string
	// Main is the [Main] section.
	Main MainConfig
	// Programs holds every [Program:NAME] section, sorted by name.
	Programs []*ProgramConfig
}

// MainConfig is the [Main] section of the main config file.
type MainConfig struct {
	Pidfile      string // usrsvcd's own pidfile (absolute)
	ConfigDir    string // absolute; "" when not set
	StateDir     string // absolute; default ~/.local/state/usrsvc
	DaemonStdout string // usrsvcd_stdout, absolute; "" = default (a log file in StateDir when detached)
	DaemonStderr string // usrsvcd_stderr, absolute, or "stdout"; "" = same as stdout
	SendmailPath string // "" = auto (/usr/sbin/sendmail, /usr/bin/sendmail, then $PATH)
	LogFormat    string // "text" or "json"
	Line         int    // line of the [Main] header
}

// ProgramConfig is one [Program:NAME] section, resolved: defaults applied,
// every key typed. Fields hold the documented defaults when the key is absent.
type ProgramConfig struct {
	Name string
	File string // file that defines the section
	Line int    // line of the [Program:NAME] header

	Command  string   // the command line as written
	Args     []string // argv: Command split like a POSIX shell (without useshell), or the last simple command's argv (useshell)
	UseShell bool

	Pidfile string // absolute
	Stdout  string // absolute
	Stderr  string // absolute; equal to Stdout when stderr = stdout (the default)

	Enabled        bool // default true
	AutoPid        bool // default true
	ScanForProcess bool // default true
	// ProcTitleRE matches process titles; the default is built from Args (SPEC §3).
	ProcTitleRE *regexp.Regexp
	// ProcTitleExplicit is true when proctitle_re was set in the config.
	ProcTitleExplicit bool

	Autostart      bool          // default true
	Autorestart    bool          // default true
	MaxRestarts    int           // default 0 = unlimited
	RestartDelay   time.Duration // default 0
	SuccessSeconds time.Duration // default 2 s
	TermToKill     time.Duration // term_to_kill_seconds, default 8 s

	InheritEnv bool     // default true
	Env        []EnvVar // [[Env]], in file order (defaults first, overridden key-wise)

	Defaults    string          // the DefaultSettings name, "" if none
	EmailAlerts []*mail.Address // validated addresses

	Monitor MonitorConfig // [[Monitor]] / [[Monitoring]]
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
