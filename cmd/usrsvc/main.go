// Command usrsvc starts, stops, restarts and reports the programs of one
// account's usrsvc configuration, without being their parent.
//
//	usrsvc [--config F] [--json] [-P|--parallel] [-q] start|stop|restart|status NAME|all
//	usrsvc [--config F] tail [-f] [-n N] [--stderr] NAME
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

const usage = `usage: usrsvc [options] start|stop|restart|status NAME|all
       usrsvc [--config FILE] tail [-f] [-n N] [--stderr] NAME

Starts, stops, restarts or reports a program of your usrsvc configuration
(or every program with "all"). Programs run detached: their parent is init,
never usrsvc or usrsvcd. tail prints the last lines of a program's stdout
file (or its stderr file), and with -f follows it, across log rotation,
until Ctrl-C.

options:
  --config FILE   main config file (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)
  --json          one JSON object per program per line on stdout
  -P, --parallel  with "all": act on every program concurrently
  -q, --quiet     print only errors
  -f, --follow    tail: follow the file as it grows (Ctrl-C ends)
  -n, --lines N   tail: how many last lines (default 10)
  --stderr        tail: the program's stderr file instead of stdout
  --demo          show usrsvc at work in a temp directory (nothing to set up)
  --readme        print the full documentation
  --version       print the version
  -h, --help      print this help

Return codes: 0 success, 1 failure (status: not running), 11 try again
(lock busy; out of open files or disk space), 130 invalid config,
131 invalid action, 132 program disabled,
133 no such program, 134 exited during success_seconds,
136 insufficient permissions, 137 failed to launch, 138 help.
`

type options struct {
	config   string
	json     bool
	parallel bool
	quiet    bool
	follow   bool
	lines    int
	stderr   bool
	tailOpts bool // -f, -n or --stderr given
	args     []string
}

// parseArgs parses the options, before or after the action. done is true
// when the command is over (help, version, readme, demo, or a usage error)
// with the exit code code.
func parseArgs(args []string, stdout, stderr io.Writer) (o *options, code int, done bool) {
	o = &options{}
	fs := flag.NewFlagSet("usrsvc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, "\n"+usage) }
	for _, name := range []string{"config", "c"} {
		fs.StringVar(&o.config, name, "", "main config file")
	}
	fs.BoolVar(&o.json, "json", false, "one JSON object per program per line")
	for _, name := range []string{"parallel", "P"} {
		fs.BoolVar(&o.parallel, name, false, "with all: concurrently")
	}
	for _, name := range []string{"quiet", "q"} {
		fs.BoolVar(&o.quiet, name, false, "print only errors")
	}
	for _, name := range []string{"follow", "f"} {
		fs.BoolVar(&o.follow, name, false, "tail: follow")
	}
	for _, name := range []string{"lines", "n"} {
		fs.IntVar(&o.lines, name, 10, "tail: how many lines")
	}
	fs.BoolVar(&o.stderr, "stderr", false, "tail: the stderr file")
	showVersion := fs.Bool("version", false, "print the version")
	var help bool
	for _, name := range []string{"help", "h"} {
		fs.BoolVar(&help, name, false, "print the help")
	}
	readme := fs.Bool("readme", false, "print the documentation")
	demoFlag := fs.Bool("demo", false, "show usrsvc at work")
	demoDaemon := fs.String(strings.TrimPrefix(demo.DaemonFlag, "--"), "", "the demo's daemon (internal)")

	positional, err := cli.Parse(fs, args)
	switch {
	case help || slices.Contains(positional, "help"):
		fmt.Fprint(stdout, usage)
		return nil, int(exitcode.HelpMessage), true
	case err != nil:
		return nil, int(exitcode.InvalidAction), true // flag printed the error and the usage
	case *showVersion:
		fmt.Fprintf(stdout, "usrsvc %s\n", version.Version)
		return nil, 0, true
	case *readme:
		fmt.Fprint(stdout, manual.README)
		return nil, 0, true
	case *demoFlag:
		return nil, runDemo(stdout, stderr), true
	case *demoDaemon != "":
		if err := demo.Daemon(*demoDaemon); err != nil {
			fmt.Fprintf(stderr, "usrsvc demo daemon: %v\n", err)
			return nil, int(exitcode.Of(err)), true
		}
		return nil, 0, true
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "follow", "f", "lines", "n", "stderr":
			o.tailOpts = true
		}
	})
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
		fmt.Fprint(stderr, usage)
		return int(exitcode.HelpMessage)
	}
	action := usrsvc.Action(o.args[0])
	switch action {
	case usrsvc.ActionStart, usrsvc.ActionStop, usrsvc.ActionRestart, usrsvc.ActionStatus:
		if o.tailOpts {
			fmt.Fprintf(stderr, "usrsvc: -f, -n and --stderr go with tail, not %s (usrsvc --help)\n", action)
			return int(exitcode.InvalidAction)
		}
	case "tail":
		return runTail(o, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "usrsvc: unknown action %q: use start, stop, restart, status or tail (usrsvc --help)\n", action)
		return int(exitcode.InvalidAction)
	}
	if len(o.args) != 2 {
		if len(o.args) < 2 {
			fmt.Fprintf(stderr, "usrsvc: %s needs a program name or \"all\" (usrsvc --help)\n", action)
		} else {
			fmt.Fprintf(stderr, "usrsvc: %s takes one program name or \"all\", got %q\n", action, o.args[1:])
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
	if os.Geteuid() == 0 && !o.quiet {
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
		fmt.Fprintln(stderr, "usrsvc: tail takes one program name: usrsvc tail [-f] [-n N] [--stderr] NAME")
		return int(exitcode.InvalidAction)
	}
	if o.lines < 0 {
		fmt.Fprintf(stderr, "usrsvc: -n %d: the number of lines must be 0 or more\n", o.lines)
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
		if o.json {
			enc.Encode(report.FromResult(r))
			for _, w := range warnings(r) {
				fmt.Fprintf(stderr, "%s - warning: %s: %s\n", stamp(r.Time), r.Program, w)
			}
			continue
		}
		printHuman(r, o.quiet, stdout, stderr)
	}
	return int(code)
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
		fmt.Fprintf(stderr, "%s - Failed to %s %s (%s, code %d): %s\n", ts, r.Action, r.Program, rec.CodeName, rec.Code, rec.Message)
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
