package svimport

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/cfgval"
	"github.com/usrsvc/usrsvc/internal/supervisordconf"
)

// A rule says what becomes of one supervisord key: the usrsvc key(s) and a
// note for the migration guide, and the conversion itself. The tables
// below are the one source of both: docs/migrating-from-supervisord.md
// shows them (TestMigrationDoc keeps it in step).
type rule struct {
	key    string
	usrsvc string // the usrsvc equivalent, in Markdown; "—" for none
	doc    string // how it converts, or why it does not
	conv   func(c *conv, k *supervisordconf.Key, v string)
}

// A kind is a kind of supervisord section and its rules.
type kind struct {
	name    string // "program": [program:x]
	heading string // the guide's heading
	intro   string
	why     string // a section not converted: why, for its comment (the guide shows intro)
	rules   []rule
	convert func(c *conv, s *supervisordconf.Section) // nil: the section is not converted (why in intro)
}

// Reasons shared by several keys.
const (
	whyRotate   = "usrsvc does not rotate logs: rotate them with logrotate (`copytruncate`, or `create`: `usrsvc tail -f` follows both)"
	whyEvents   = "usrsvc has no event listeners: a `[[Hook]]` runs a command on a program's events (exited, restarted, gave-up, …) with the event as JSON on stdin"
	whySyslog   = "usrsvc writes a program's output to files only"
	whyUser     = "usrsvc runs every program as the account that runs usrsvc, never as another: run usrsvc (and this import) as that user"
	whyPriority = "usrsvc starts programs in name order (or all at once with -P), not by number: name what must run first with `depends_on`"
)

// kinds is set in init: its conversions look kinds up.
var kinds []kind

func init() {
	kinds = kindTable()
}

func kindTable() []kind {
	return []kind{
		{
			name:    "program",
			heading: "`[program:x]` → `[Program:x]`",
			intro: "Each program becomes a `[Program:x]` section with `defaults = supervisord`, a " +
				"`[DefaultSettings:supervisord]` section that holds supervisord's defaults where usrsvc's differ " +
				"(`autorestart = unexpected`, `success_seconds = 1`, `term_to_kill_seconds = 10`) and what " +
				"`[supervisord]` gives every program (`environment`, `umask`, `directory`). The expansions " +
				"`%(program_name)s`, `%(group_name)s`, `%(here)s`, `%(numprocs)d`, `%(host_node_name)s` and " +
				"`%(ENV_X)s` are made at import (the last two with the importing machine's values, noted in a comment); " +
				"with `numprocs` > 1, `%(process_num)d` and `%(process_num)02d` are left for usrsvc, which expands them " +
				"in command, stdout, stderr and `[[Env]]` values.",
			convert: (*conv).program,
			rules: []rule{
				{"command", "`command`", "split as supervisord splits it (no shell: `$HOME`, `>` and `|` are plain characters) and quoted so that usrsvc runs the same arguments; `sh -c '…'` and `bash -c '…'` become `useshell = true`, so that usrsvc finds the program the shell runs. Programs that rename their process (nginx, php-fpm) get a `proctitle_re`", (*conv).command},
				{"process_name", "—", "usrsvc names the instances itself: `NAME` when `numprocs = 1`, else `NAME_00`, `NAME_01`, … (supervisord's usual `%(program_name)s_%(process_num)02d`)", (*conv).processName},
				{"numprocs", "`numprocs`", "as is", (*conv).numprocsKey},
				{"numprocs_start", "—", "usrsvc numbers instances from 0; with `numprocs = 1` it is only used to expand `%(process_num)`", (*conv).numprocsStart},
				{"priority", "`depends_on`", whyPriority, notConverted(whyPriority)},
				{"autostart", "`autostart`", "as is", boolKey("autostart")},
				{"startsecs", "`success_seconds`", "as is; 0 becomes 0.1 (usrsvc watches a start for some time)", (*conv).startsecs},
				{"startretries", "`maxrestarts`", "as is (usrsvc counts automatic restarts until the program has run 60 s); 0 is not converted: `maxrestarts = 0` means unlimited", (*conv).startretries},
				{"autorestart", "`autorestart`", "`true`, `false` or `unexpected`", (*conv).autorestart},
				{"exitcodes", "`exit_codes`", "as is", (*conv).exitcodes},
				{"stopsignal", "`stop_signal`", "the signal's name (TERM, INT, QUIT, HUP, KILL, USR1, USR2, WINCH)", (*conv).stopsignal},
				{"stopwaitsecs", "`term_to_kill_seconds`", "as is", secondsKey("term_to_kill_seconds")},
				{"stopasgroup", "`stop_group`", "`stop_group = true` when either is true: the stop signal (and the SIGKILL after `term_to_kill_seconds`) goes to every process of the program's session", (*conv).asGroup},
				{"killasgroup", "`stop_group`", "see stopasgroup", (*conv).asGroup},
				{"user", "—", whyUser, notConverted(whyUser)},
				{"redirect_stderr", "`stderr = stdout`", "as is", (*conv).redirectStderr},
				{"stdout_logfile", "`stdout`", "a path as is; `AUTO` is usrsvc's default log (`~/.local/state/usrsvc/logs/NAME.log`); `NONE` is `/dev/null`; `/dev/stdout` and `syslog` are not converted: programs are detached, with no manager output to share", logfile("stdout")},
				{"stdout_logfile_maxbytes", "—", whyRotate, notConverted(whyRotate)},
				{"stdout_logfile_backups", "—", whyRotate, notConverted(whyRotate)},
				{"stdout_capture_maxbytes", "—", whyEvents, notConverted(whyEvents)},
				{"stdout_events_enabled", "—", whyEvents, notConverted(whyEvents)},
				{"stdout_syslog", "—", whySyslog, notConverted(whySyslog)},
				{"stderr_logfile", "`stderr`", "as stdout_logfile; without it, usrsvc writes stderr to the stdout file (supervisord: a separate AUTO file)", logfile("stderr")},
				{"stderr_logfile_maxbytes", "—", whyRotate, notConverted(whyRotate)},
				{"stderr_logfile_backups", "—", whyRotate, notConverted(whyRotate)},
				{"stderr_capture_maxbytes", "—", whyEvents, notConverted(whyEvents)},
				{"stderr_events_enabled", "—", whyEvents, notConverted(whyEvents)},
				{"stderr_syslog", "—", whySyslog, notConverted(whySyslog)},
				{"environment", "`[[Env]]`", "one `NAME = value` line each, after `[supervisord]`'s (which `[DefaultSettings:supervisord]` holds)", (*conv).environment},
				{"directory", "`directory`", "as is", (*conv).directory},
				{"umask", "`umask`", "as is (octal)", (*conv).umask},
				{"serverurl", "—", "for `supervisor.childutils` inside the program: usrsvcweb speaks the same XML-RPC, point it there", (*conv).serverurl},
			},
		},
		{
			name:    "group",
			heading: "`[group:x]` → `[Group:x]`",
			intro:   "A group names several programs; `usrsvc start x` acts on them all.",
			convert: (*conv).group,
			rules: []rule{
				{"programs", "`programs`", "the same names", (*conv).groupPrograms},
				{"priority", "—", whyPriority, notConverted(whyPriority)},
			},
		},
		{
			name:    "supervisord",
			heading: "`[supervisord]` → `[Main]` and `[DefaultSettings:supervisord]`",
			intro: "usrsvcd is not its programs' parent and keeps its own files in the state directory " +
				"(`~/.local/state/usrsvc`): supervisord's log and pidfile are not reused, so that both can run " +
				"side by side while you move programs over. `[Main]` gets `pidfile = ~/.local/state/usrsvc/usrsvcd.pid`.",
			convert: (*conv).supervisord,
			rules: []rule{
				{"logfile", "`usrsvcd_stdout`", "not converted: usrsvcd logs to `~/.local/state/usrsvc/usrsvcd.log` unless `usrsvcd_stdout` says otherwise", notConverted("usrsvcd logs to ~/.local/state/usrsvc/usrsvcd.log; set usrsvcd_stdout in [Main] to log elsewhere (not to supervisord's own log while it runs)")},
				{"logfile_maxbytes", "—", whyRotate + "; usrsvcd reopens its log on SIGUSR2", notConverted(whyRotate)},
				{"logfile_backups", "—", whyRotate, notConverted(whyRotate)},
				{"loglevel", "—", "usrsvcd logs every event; `log_format = json` for machine-readable lines", notConverted("usrsvcd has no log levels: it logs every event (log_format = json for machine-readable lines)")},
				{"pidfile", "`pidfile`", "not reused: `[Main] pidfile` is usrsvcd's own", notConverted("usrsvcd has its own pidfile ([Main] pidfile): not supervisord's, so both can run while you migrate")},
				{"umask", "`umask`", "every program's, in `[DefaultSettings:supervisord]`", (*conv).umask},
				{"nodaemon", "—", "`usrsvcd --foreground` (the systemd units use it)", notConverted("run usrsvcd --foreground to stay in the foreground (the systemd units do)")},
				{"silent", "—", "usrsvcd --foreground logs to stderr unless usrsvcd_stdout is set", notConverted("usrsvcd --foreground logs to stderr unless usrsvcd_stdout is set")},
				{"minfds", "`limit_nofile`", "not converted: set `limit_nofile` on the programs that need many files", notConverted("usrsvcd needs no minimum; set limit_nofile on the programs that need many open files")},
				{"minprocs", "`limit_nproc`", "not converted: set `limit_nproc` on the programs that need it", notConverted("usrsvcd needs no minimum; set limit_nproc on the programs that need it")},
				{"nocleanup", "—", "usrsvc keeps no AUTO log files to clean up", notConverted("usrsvc keeps no AUTO log files to clean up")},
				{"childlogdir", "—", "usrsvc's default logs are `~/.local/state/usrsvc/logs/NAME.log`", notConverted("usrsvc's default logs are in its state directory: ~/.local/state/usrsvc/logs/NAME.log")},
				{"user", "—", whyUser, notConverted(whyUser)},
				{"directory", "`directory`", "every program's, in `[DefaultSettings:supervisord]` (supervisord's programs inherit its directory)", (*conv).directory},
				{"strip_ansi", "—", "usrsvc writes the output as the program wrote it", notConverted("usrsvc writes the output as the program wrote it")},
				{"environment", "`[[Env]]`", "every program's, in `[DefaultSettings:supervisord]`", (*conv).environment},
				{"identifier", "—", "usrsvcweb answers `supervisor.getIdentification` with `usrsvc`", notConverted("usrsvcweb identifies itself as usrsvc")},
			},
		},
		{
			name:    "inet_http_server",
			heading: "`[inet_http_server]` → `[Web]`",
			intro: "usrsvcweb (a separate process) serves supervisord's XML-RPC, so `supervisorctl` works against it. " +
				"It listens on TCP only with a password, and `usrsvc import` never writes a password into a file: " +
				"the `[Web]` lines come out commented, to complete by hand in a file only you can read.",
			convert: (*conv).inetServer,
			rules: []rule{
				{"port", "`listen`", "`HOST:PORT` (`*:9001` is `:9001`), commented until you add the password", (*conv).inetPort},
				{"username", "`username`", "as is, commented with listen", (*conv).inetUsername},
				{"password", "`password`", "never copied: add it by hand (plain, `{SHA}` + hex SHA-1, or a bcrypt hash) and keep the file private (`chmod 600`)", (*conv).inetPassword},
			},
		},
		{
			name:    "unix_http_server",
			heading: "`[unix_http_server]` → `[Web]`",
			intro: "usrsvcweb listens on `unix:~/.local/state/usrsvc/usrsvcweb.sock` by default (mode 0600: the " +
				"account's alone); supervisorctl reaches it with `-s unix:///home/USER/.local/state/usrsvc/usrsvcweb.sock`.",
			convert: (*conv).unixServer,
			rules: []rule{
				{"file", "`listen`", "`unix:PATH` when PATH is in your home directory; a system path (`/var/run/…`, `/tmp/…`) is not converted: the account cannot create it, or shares its directory with every user", (*conv).unixFile},
				{"chmod", "—", "usrsvcweb's socket is always 0600", notConverted("usrsvcweb's socket is always 0600: the account's alone")},
				{"chown", "—", "usrsvcweb's socket belongs to the account", notConverted("usrsvcweb's socket belongs to the account that runs it")},
				{"username", "—", "not needed on a socket only the account can open", notConverted("not needed: only the account can open usrsvcweb's socket")},
				{"password", "—", "not needed on a socket only the account can open (never copied)", notConverted("not needed: only the account can open usrsvcweb's socket")},
			},
		},
		{
			name:    "supervisorctl",
			heading: "`[supervisorctl]`",
			intro: "supervisorctl reads this section of its own configuration; against usrsvcweb, run it with " +
				"`-s unix:///home/USER/.local/state/usrsvc/usrsvcweb.sock` (or `-s http://HOST:PORT -u USER -p PASSWORD`). " +
				"`usrsvc status`, `usrsvc ls` and `usrsvc tail -f` do the same without it.",
			convert: (*conv).notes,
			rules: []rule{
				{"serverurl", "—", "`supervisorctl -s URL`", notConverted("supervisorctl's own setting: supervisorctl -s unix://SOCKET (usrsvcweb's)")},
				{"username", "—", "`supervisorctl -u USER`", notConverted("supervisorctl's own setting: supervisorctl -u USER")},
				{"password", "—", "`supervisorctl -p PASSWORD` (never copied)", notConverted("supervisorctl's own setting: supervisorctl -p PASSWORD")},
				{"prompt", "—", "supervisorctl's own setting", notConverted("supervisorctl's own setting")},
				{"history_file", "—", "supervisorctl's own setting", notConverted("supervisorctl's own setting")},
			},
		},
		{
			name:    "include",
			heading: "`[include]`",
			intro:   "",
			convert: (*conv).include,
			rules: []rule{
				{"files", "`config_dir`", "with `--include`, the files are read and converted with the main file (globs relative to its directory, as supervisord reads them; an included file's own `[include]` is ignored, as supervisord ignores it); without, they are listed, not read. `usrsvc import -o DIR` writes one file per program into `DIR/usrsvc.d`, the main file's `config_dir`", nil},
			},
		},
		{
			name:    "eventlistener",
			heading: "`[eventlistener:x]`",
			intro:   "Not converted: " + whyEvents + ".",
			why:     whyEvents,
		},
		{
			name:    "fcgi-program",
			heading: "`[fcgi-program:x]`",
			intro: "Not converted: usrsvc does not open sockets for its programs. Run the FastCGI server with a " +
				"socket of its own (php-fpm, spawn-fcgi, uwsgi) as a `[Program:x]`.",
			why: "usrsvc does not open sockets for its programs: run the FastCGI server with a socket of its own as a [Program:x]",
		},
		{
			name:    "rpcinterface",
			heading: "`[rpcinterface:x]`",
			intro: "Not converted: usrsvcweb serves supervisord's `supervisor.*` and `system.*` XML-RPC methods itself; " +
				"it loads no plugins, so `[rpcinterface:supervisor]` is not needed.",
			why: "usrsvcweb serves supervisord's XML-RPC methods itself and loads no plugins",
		},
		{
			name:    "ctlplugin",
			heading: "`[ctlplugin:x]`",
			intro:   "Not converted: supervisorctl plugins are supervisorctl's business; they work against usrsvcweb as far as they use the standard methods.",
			why:     "supervisorctl plugins are supervisorctl's business",
		},
	}
}

// kindOf returns the kind of a supervisord section name, or nil.
func kindOf(name string) *kind {
	k, _, _ := strings.Cut(name, ":")
	for i := range kinds {
		if kinds[i].name == k {
			return &kinds[i]
		}
	}
	return nil
}

// notConverted is a rule's conversion for a key usrsvc has no use for.
func notConverted(why string) func(c *conv, k *supervisordconf.Key, v string) {
	return func(c *conv, k *supervisordconf.Key, v string) { c.notConverted(k, v, why) }
}

// boolKey converts a boolean to the usrsvc key name.
func boolKey(name string) func(c *conv, k *supervisordconf.Key, v string) {
	return func(c *conv, k *supervisordconf.Key, v string) {
		b, ok := cfgval.Bool(v)
		if !ok {
			c.notConverted(k, v, "not a boolean (supervisord refuses it too)")
			return
		}
		c.set(k, v, name, strconv.FormatBool(b))
	}
}

// secondsKey converts a whole number of seconds ≥ 0.
func secondsKey(name string) func(c *conv, k *supervisordconf.Key, v string) {
	return func(c *conv, k *supervisordconf.Key, v string) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			c.notConverted(k, v, "not a number of seconds ≥ 0 (supervisord refuses it too)")
			return
		}
		c.set(k, v, name, strconv.Itoa(n))
	}
}

// signals are the stop_signal values usrsvc accepts.
var signals = []string{"TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2", "WINCH"}

// signalName reads supervisord's signal: a name with or without SIG, or
// a number.
func signalName(v string) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	if n, err := strconv.Atoi(v); err == nil {
		v = unix.SignalName(unix.Signal(n))
	}
	return strings.TrimPrefix(v, "SIG")
}

// octal reads a umask as Python's int(v, 8) does and writes it as usrsvc
// does (022).
func octal(v string) (string, bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O")
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return "", false
	}
	return fmt.Sprintf("%03o", n), true
}

// homePath reports whether p is in home (or is home).
func homePath(p, home string) bool {
	if home == "" || !filepath.IsAbs(p) {
		return false
	}
	rel, err := filepath.Rel(home, filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
