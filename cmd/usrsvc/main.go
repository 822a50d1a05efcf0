// Command usrsvc starts, stops, restarts and reports the programs of one
// account's usrsvc configuration, without being their parent.
//
//	usrsvc [--config F] [--json] [-P|--parallel] [-q] start|stop|restart|reload|status NAME|all
//	usrsvc [--config F] ls [NAME|all]   (status --table)
//	usrsvc [--config F] tail [-f] [-n N] [--stderr] NAME
//	usrsvc import [--include] [-o DIR] SUPERVISORD.CONF
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cli"
	"github.com/usrsvc/usrsvc/internal/demo"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/logfile"
	"github.com/usrsvc/usrsvc/internal/manual"
	"github.com/usrsvc/usrsvc/internal/report"
	"github.com/usrsvc/usrsvc/internal/suggest"
	"github.com/usrsvc/usrsvc/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: usrsvc [options] start|stop|restart|reload|status NAME|all
       usrsvc [options] ls [NAME|all]
       usrsvc [options] tail [-f] [-n N] [--stderr] NAME
       usrsvc import [--include] [-o DIR] SUPERVISORD.CONF
       usrsvc --demo | --readme | --version | --help

Starts, stops, restarts, reloads and reports the programs of your usrsvc
configuration, or every program with "all" (a group, or a program with
numprocs, stands for its programs). Programs run detached: their parent is
init, never usrsvc or usrsvcd.

Actions:
  start NAME|all    start it detached; it must stay up success_seconds
  stop NAME|all     SIGTERM, then SIGKILL after term_to_kill_seconds
  restart NAME|all  stop then start, under one lock
  reload NAME|all   send its reload_signal (it stays the same process)
  status NAME|all   report it; exit 0 if running, 1 if not
  ls [NAME|all]     one aligned line per program, like supervisorctl status
                    (status --table; default all)
  tail NAME         print the last lines of its stdout file; -f follows it
  import FILE       convert a supervisord configuration into usrsvc's: on
                    stdout, or with -o DIR into DIR/usrsvc.cfg and DIR/usrsvc.d
  help              print this help
`

const footer = `Return codes: 0 success; 1 failure (status: not running; all: one
failed); 11 try again (lock busy, out of open files or disk space);
130 invalid config (import: the result does not pass checkconfig);
131 invalid action or option; 132 program disabled;
133 no such program; 134 exited during success_seconds; 136 insufficient
permissions; 137 failed to launch; 138 usage printed for a bare usrsvc.
man usrsvc tells more; the full manual is docs/ in usrsvc's source.
`

// actions are the actions usrsvc knows, for suggestions.
var actions = []string{"start", "stop", "restart", "reload", "status", "ls", "tail", "import", "help"}

type options struct {
	config   string
	json     bool
	table    bool
	parallel bool
	quiet    bool
	follow   bool
	lines    int
	stderr   bool
	include  bool
	output   string
	args     []string
	cmd      *cli.Command
}

// parseArgs parses the options, before or after the action. done is true
// when the command is over (help, version, readme, demo, or a usage error)
// with the exit code code.
func parseArgs(args []string, stdout, stderr io.Writer) (o *options, code int, done bool) {
	o = &options{lines: 10}
	c := cli.New("usrsvc", usage, footer, stderr)
	o.cmd = c
	c.String(&o.config, "c config", "FILE", "main config file (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)")
	c.Bool(&o.json, "json", "one JSON object per program per line on stdout")
	c.Bool(&o.table, "table", "one aligned line per program, like supervisorctl").For = []string{"status"}
	c.Bool(&o.parallel, "P parallel", `with "all": act on every program concurrently`)
	c.Bool(&o.quiet, "q quiet", "print only warnings and errors (nothing on success)")
	tailOnly := []string{"tail"}
	c.Bool(&o.follow, "f follow", "follow the file as it grows, until Ctrl-C").For = tailOnly
	c.Int(&o.lines, "n lines", "N", "print the last N lines (default 10)").For = tailOnly
	c.Bool(&o.stderr, "stderr", "the program's stderr file instead of its stdout").For = tailOnly
	c.Bool(&o.include, "include", "convert the files of [include] too").For = []string{"import"}
	c.String(&o.output, "o output", "DIR", "write DIR/usrsvc.cfg and one file per program in DIR/usrsvc.d").For = []string{"import"}
	var showVersion, readme, demoFlag bool
	var demoDaemon string
	c.Bool(&demoFlag, "demo", "show usrsvc at work in a temp directory (nothing to set up)")
	c.Bool(&readme, "readme", "print the README (the manual: docs/, man usrsvc)")
	c.Bool(&showVersion, "version", "print the version and exit")
	c.String(&demoDaemon, strings.TrimPrefix(demo.DaemonFlag, "--"), "DIR", "the demo's daemon").Hidden = true

	positional, help, err := c.Parse(args, stdout)
	switch {
	case help || len(positional) > 0 && positional[0] == "help":
		if !help {
			c.PrintHelp(stdout)
		}
		return nil, int(exitcode.Success), true
	case err != nil:
		return nil, int(exitcode.InvalidAction), true // Parse printed the error and the synopsis
	case showVersion:
		fmt.Fprintf(stdout, "usrsvc %s\n", version.Version)
		return nil, 0, true
	case readme:
		fmt.Fprint(stdout, manual.README)
		return nil, 0, true
	case demoFlag:
		return nil, runDemo(stdout, stderr), true
	case demoDaemon != "":
		if err := demo.Daemon(demoDaemon); err != nil {
			fmt.Fprintf(stderr, "usrsvc demo daemon: %v\n", err)
			return nil, int(exitcode.Of(err)), true
		}
		return nil, 0, true
	}
	o.args = positional
	return o, 0, false
}

func run(args []string, stdout, stderr io.Writer) int {
	// A closed stdout or stderr (usrsvc status all | head -1) must not
	// kill us with SIGPIPE: a write to it fails with EPIPE, which is
	// ignored, and the exit code stays the real outcome.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	o, code, done := parseArgs(args, stdout, stderr)
	if done {
		return code
	}
	if len(o.args) == 0 {
		o.cmd.PrintHelp(stderr)
		return int(exitcode.HelpMessage)
	}
	action := usrsvc.Action(o.args[0])
	if action == "ls" { // status --table, of every program by default
		if o.json {
			o.cmd.UsageError("ls prints a table: for JSON use usrsvc status --json all")
			return int(exitcode.InvalidAction)
		}
		action, o.table = usrsvc.ActionStatus, true
		if len(o.args) == 1 {
			o.args = append(o.args, "all")
		}
	}
	if !slices.Contains(actions, string(action)) {
		o.cmd.UnknownAction(string(action), actions)
		return int(exitcode.InvalidAction)
	}
	if opt := o.cmd.Misplaced(string(action)); opt != nil {
		o.cmd.UsageError("%s goes with %s, not %s", opt.Long(), strings.Join(opt.For, " or "), action)
		return int(exitcode.InvalidAction)
	}
	if o.table && o.json {
		o.cmd.UsageError("--table and --json exclude each other")
		return int(exitcode.InvalidAction)
	}
	switch action {
	case "tail":
		return runTail(o, stdout, stderr)
	case "import":
		return runImport(o, stdout, stderr)
	}
	if len(o.args) != 2 {
		if len(o.args) < 2 {
			o.cmd.UsageError("%s needs a program name or \"all\"", action)
		} else {
			o.cmd.UsageError("%s takes one program name or \"all\", got %q", action, o.args[1:])
		}
		return int(exitcode.InvalidAction)
	}
	name := o.args[1]

	// A broken configuration never locks the operator out: every program
	// whose section is valid can still be acted on (and a broken one still
	// stopped, when what finds its process is intact); the problems are
	// warnings, and starting a broken program is refused with code 130.
	cfg, err := usrsvc.LoadConfig(o.config)
	if cfg == nil || len(cfg.Files) == 0 {
		fmt.Fprintf(stderr, "usrsvc: the configuration does not load:\n%v\n", err)
		return int(exitcode.Of(err))
	}
	if err != nil {
		var ce *usrsvc.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "usrsvc: warning: the configuration has %s; acting on what still reads:\n", plural(len(ce.Problems), "problem"))
			for _, p := range ce.Problems {
				fmt.Fprintf(stderr, "usrsvc: warning: %s\n", p)
			}
		}
	}
	if os.Geteuid() == 0 { // a warning: shown with -q too

		fmt.Fprintln(stderr, "usrsvc: warning: running as root; usrsvc is meant for a service account")
	}
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "usrsvc: %v\n", err)
		return int(exitcode.Of(err))
	}
	// Ctrl-C abandons the wait; a launcher still running finishes its
	// program's start by itself (it holds the lock and writes the pidfile).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return printResults(m.DoAll(ctx, action, []string{name}, o.parallel), name == "all", o, stdout, stderr)
}

// runTail prints the last lines of a program's log file, and with -f
// follows it until Ctrl-C.
func runTail(o *options, stdout, stderr io.Writer) int {
	if len(o.args) != 2 || o.args[1] == "all" {
		o.cmd.UsageError("tail takes one program name")
		return int(exitcode.InvalidAction)
	}
	if o.lines < 0 {
		o.cmd.UsageError("-n %d: the number of lines must be 0 or more", o.lines)
		return int(exitcode.InvalidAction)
	}
	name := o.args[1]
	cfg, err := usrsvc.LoadConfig(o.config)
	if cfg == nil || len(cfg.Files) == 0 {
		fmt.Fprintf(stderr, "usrsvc: the configuration does not load:\n%v\n", err)
		return int(exitcode.Of(err))
	}
	pc := cfg.Program(name)
	if pc == nil {
		// A program whose section is broken still has its log files.
		for _, b := range cfg.Broken {
			if b.Name == name && b.Stdout != "" {
				pc = b
			}
		}
	}
	if pc == nil {
		fmt.Fprintf(stderr, "usrsvc: tail %s: no program named %q is defined%s\n", name, name, didYouMean(name, cfg))
		return int(exitcode.ProgramUndefined)
	}
	stream, path := "stdout", pc.Stdout
	if o.stderr {
		stream, path = "stderr", pc.Stderr
	}
	if !o.follow {
		lines, err := logfile.ProgramTail(name, stream, path, o.lines)
		if err != nil {
			fmt.Fprintf(stderr, "usrsvc: %v\n", err)
			return int(exitcode.Of(err))
		}
		for _, l := range lines {
			fmt.Fprintln(stdout, l)
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	notify := func(msg string) { fmt.Fprintf(stderr, "usrsvc: %s\n", msg) }
	if err := logfile.ProgramFollow(ctx, name, stream, path, o.lines, stdout, notify); err != nil {
		if errors.Is(err, syscall.EPIPE) {
			return 0 // usrsvc tail -f x | head: the reader is done
		}
		fmt.Fprintf(stderr, "usrsvc: %v\n", err)
		return int(exitcode.Of(err))
	}
	return 0
}

func runDemo(stdout, stderr io.Writer) int {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	if err := demo.Run(context.Background(), stdout, self); err != nil {
		fmt.Fprintf(stderr, "usrsvc demo: %v\n", err)
		return int(exitcode.GeneralFailure)
	}
	return 0
}

// printResults prints the results and returns the exit code.
func printResults(results []usrsvc.Result, all bool, o *options, stdout, stderr io.Writer) int {
	enc := json.NewEncoder(stdout)
	code := exitcode.Success
	for _, r := range results {
		c := report.Code(r)
		if c != exitcode.Success {
			if all && !(r.Action == usrsvc.ActionStatus && c == exitcode.GeneralFailure && !enabled(r)) {
				code = exitcode.GeneralFailure
			} else if !all {
				code = c
			}
		}
		switch {
		case o.json:
			enc.Encode(report.FromResult(r))
			for _, w := range warnings(r) {
				fmt.Fprintf(stderr, "%s - warning: %s: %s\n", stamp(r.Time), r.Program, w)
			}
		case o.table: // warnings and errors now, the table after
			printHuman(r, true, stdout, stderr)
		default:
			printHuman(r, o.quiet, stdout, stderr)
		}
	}
	if o.table && !o.quiet {
		report.WriteTable(stdout, results, time.Now())
	}
	return int(code)
}

// failed is the head of a failure line: "Failed to start web", "Cannot get
// the status of web".
func failed(action usrsvc.Action, program string) string {
	switch action {
	case usrsvc.ActionStatus:
		return "Cannot get the status of " + program
	case usrsvc.ActionStart, usrsvc.ActionStop, usrsvc.ActionRestart:
		return "Failed to " + string(action) + " " + program
	default:
		return fmt.Sprintf("%s of %s failed", action, program)
	}
}

func enabled(r usrsvc.Result) bool {
	return r.Status == nil || !r.Status.Disabled
}

func warnings(r usrsvc.Result) []string {
	if r.Status == nil {
		return nil
	}
	return r.Status.Warnings
}

func stamp(t time.Time) string { return "[" + t.Format(time.ANSIC) + "]" }

func printHuman(r usrsvc.Result, quiet bool, stdout, stderr io.Writer) {
	ts := stamp(r.Time)
	for _, w := range warnings(r) {
		fmt.Fprintf(stderr, "%s - warning: %s: %s\n", ts, r.Program, w)
	}
	if r.Err != nil {
		rec := report.FromResult(r)
		fmt.Fprintf(stderr, "%s - %s (%s, code %d): %s\n", ts, failed(r.Action, r.Program), rec.CodeName, rec.Code, rec.Message)
		for _, l := range rec.Stderr {
			fmt.Fprintf(stderr, "    | %s\n", l)
		}
		return
	}
	if quiet {
		return
	}
	st := r.Status
	var head string
	switch {
	case r.Action == usrsvc.ActionStatus && st.State == usrsvc.StateRemoved:
		head = r.Program + ": " + st.Message // removed from the configuration, still running (pid N)
	case r.Action == usrsvc.ActionStatus && st.Running:
		head = r.Program + " is running"
	case r.Action == usrsvc.ActionStatus:
		head = r.Program + " is not running"
		if st.Disabled {
			head += " (disabled)"
		}
	case r.Action == usrsvc.ActionStart && st.WasRunning:
		head = r.Program + " is already running"
	case r.Action == usrsvc.ActionRestart && st.WasRunning:
		head = "Restarted " + r.Program
	case r.Action == usrsvc.ActionReload:
		head = "Reloaded " + r.Program
	case r.Action == usrsvc.ActionStart || r.Action == usrsvc.ActionRestart:
		head = "Started " + r.Program
	case st.WasRunning: // stop
		head = "Stopped " + r.Program + " (" + st.Message + ")"
	default:
		head = r.Program + " is not running"
	}
	if d := details(st); d != "" {
		fmt.Fprintf(stdout, "%s - %s:\n    %s\n", ts, head, d)
	} else {
		fmt.Fprintf(stdout, "%s - %s\n", ts, head)
	}
}

// details is the line under a result: pid, start time and uptime, command
// line, and what usrsvcd recorded.
func details(st *usrsvc.Status) string {
	var parts []string
	if st.Running && st.Process != nil {
		p := st.Process
		s := fmt.Sprintf("pid %d", p.PID)
		if !p.Started.IsZero() {
			s += fmt.Sprintf(", started %s (up %s)", p.Started.Format("2006-01-02 15:04:05"), uptime(time.Since(p.Started)))
		}
		s += fmt.Sprintf(", cpu %.1f%%", st.CPUPercent)
		if st.PrivateKB > 0 {
			s += fmt.Sprintf(", private memory %s", kb(st.PrivateKB))
		}
		s += fmt.Sprintf(", rss %s", kb(st.RSSKB))
		parts = append(parts, s, "cmdline: "+p.Title)
		if p.Executable != "" && !strings.HasPrefix(p.Title, p.Executable) {
			parts = append(parts, "executable: "+p.Executable)
		}
	}
	if st.Health != "" {
		s := "health: " + st.Health
		if st.Health == "unhealthy" && st.HealthReason != "" {
			s += " (" + st.HealthReason + ")"
		}
		parts = append(parts, s)
	}
	if state := st.State; state != "" {
		s := "state: " + string(state)
		if state == usrsvc.StateBackoff && !st.NextTry.IsZero() {
			s += " (next try " + st.NextTry.Format("15:04:05") + ")"
		}
		if st.Recorded {
			s += fmt.Sprintf(", %d automatic restart", st.Restarts)
			if st.Restarts != 1 {
				s += "s"
			}
			if e := st.LastExit; e != nil {
				s += ", last exit " + e.Time.Format("2006-01-02 15:04:05")
				if e.Known && e.Exited {
					s += fmt.Sprintf(" (status %d)", e.Status)
				} else if e.Known {
					s += fmt.Sprintf(" (signal %d)", e.Signal)
				}
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func kb(n int64) string {
	if n >= 10*1024 {
		return fmt.Sprintf("%.1f MiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d kB", n)
}

func uptime(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%s", int(d/(24*time.Hour)), (d % (24 * time.Hour)).String())
	default:
		return d.String()
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// didYouMean suggests the defined program closest to name.
func didYouMean(name string, cfg *usrsvc.Config) string {
	var names []string
	for _, p := range cfg.Programs {
		names = append(names, p.Name)
	}
	if s := suggest.Closest(name, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
