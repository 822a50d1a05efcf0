// The runtime would re-read the cgroup CPU limit every few seconds to adjust
// GOMAXPROCS: a wake-up of an idle daemon for nothing, so it is set once at
// start.
//go:debug updatemaxprocs=0

// Command usrsvcd is the usrsvc daemon: it autostarts, restarts and
// monitors the programs of one account.
//
//	usrsvcd [--config FILE] [--foreground] [start|stop|restart|status|checkconfig|reread]
//
// The daemon never is its programs' parent: stopping, killing or upgrading
// it leaves them running, and a new daemon adopts them.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cli"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/version"
	"github.com/usrsvc/usrsvc/web"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: usrsvcd [options] [start|stop|restart|status|checkconfig|reread]
       usrsvcd --version | --help

The usrsvc daemon: autostart, autorestart, monitors and alerts for the
programs of your usrsvc configuration. Stopping, killing or upgrading it
never stops a program; a new daemon adopts them.

Actions (default start):
  start        start the daemon in the background (--foreground: stay
               attached, for systemd)
  stop         stop the daemon; the programs keep running
  restart      stop then start the daemon; the programs keep running
  status       print the daemon's pid and exit 0 if it runs, else exit 1
  checkconfig  check the whole configuration and print every problem
  reread       check the configuration, then make the daemon reload it
`

const footer = `Return codes: 0 success; 1 status: not running, reread: no daemon runs;
11 reread: no acknowledgement, or out of open files or disk space;
130 invalid config; 131 invalid action or option; 135 a daemon already
runs (start); 136 insufficient permissions. man usrsvcd tells more.
`

// actions are the known actions.
var actions = []string{"start", "stop", "restart", "status", "checkconfig", "reread"}

// run is usrsvcd's whole command line: it parses args, writes to stdout and
// stderr, and returns the exit code (exitcode.Code values).
func run(args []string, stdout, stderr io.Writer) int {
	// A closed stdout or stderr (usrsvcd start | true) must not kill us
	// with SIGPIPE: a write to it fails with EPIPE, which is ignored, and
	// the exit code stays the real outcome. The daemon, whose stdio may be
	// a pipe that closes, is never killed by it either.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	c := cli.New("usrsvcd", usage, footer, stderr)
	var configPath string
	var foreground, showVersion bool
	c.String(&configPath, "c config", "FILE", "main config file (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)")
	c.Bool(&foreground, "foreground", "with start or restart: stay in the foreground (for systemd Type=notify)")
	c.Bool(&showVersion, "version", "print the version and exit")
	// Options may come before or after the action.
	positional, help, err := c.Parse(args, stdout)
	if help {
		return int(exitcode.Success)
	}
	if err != nil {
		return int(exitcode.InvalidAction) // Parse printed the error and the synopsis
	}
	if showVersion {
		fmt.Fprintf(stdout, "usrsvcd %s\n", version.Version)
		return int(exitcode.Success)
	}
	action := "start"
	switch len(positional) {
	case 0:
	case 1:
		action = positional[0]
	default:
		c.UsageError("one action expected, got %q", positional)
		return int(exitcode.InvalidAction)
	}
	if action == "help" {
		c.PrintHelp(stdout)
		return int(exitcode.Success)
	}
	if !slices.Contains(actions, action) {
		c.UnknownAction(action, actions)
		return int(exitcode.InvalidAction)
	}
	switch action {
	case "checkconfig":
		return checkConfig(configPath, stdout, stderr)
	case "start":
		return actionStart(configPath, foreground, stdout, stderr)
	case "stop":
		return actionStop(configPath, stdout, stderr)
	case "restart":
		return actionRestart(configPath, foreground, stdout, stderr)
	case "status":
		return actionStatus(configPath, stdout, stderr)
	default: // reread
		return actionReread(configPath, stdout, stderr)
	}
}

// checkConfig loads the configuration and reports: every problem on stderr
// (exit 130), or a one-line summary on stdout (exit 0).
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := loadAll(path)
	if err != nil {
		var ce *usrsvc.ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "config invalid: %s\n", plural(len(ce.Problems), "problem"))
		} else {
			fmt.Fprintf(stderr, "usrsvcd: %v\n", err)
		}
		return int(exitcode.Of(err))
	}
	fmt.Fprintf(stdout, "config OK: %s from %s (%s)\n",
		plural(len(cfg.Programs), "program"), plural(len(cfg.Files), "file"), cfg.Path)
	if wc, err := web.LoadConfig(cfg); err == nil && wc.PasswordSummary() != "" {
		fmt.Fprintf(stdout, "[Web] password: %s\n", wc.PasswordSummary()) // what it is made of, never the value
	}
	return int(exitcode.Success)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// loadAll loads the configuration as usrsvc.LoadConfig does, with the
// [Web] section usrsvcweb reads: usrsvcd checks it too, so that a broken
// [Web] is reported by checkconfig and reread, not only when usrsvcweb
// starts. The problems of both come in one *usrsvc.ConfigError, by file
// (in load order) and line.
func loadAll(path string) (*usrsvc.Config, error) {
	cfg, err := usrsvc.LoadConfig(path)
	if cfg == nil || len(cfg.Files) == 0 {
		return nil, err
	}
	_, werr := web.LoadConfig(cfg)
	var ce, wce *usrsvc.ConfigError
	switch {
	case werr == nil && err == nil:
		return cfg, nil
	case werr == nil:
		return nil, err
	case err == nil || !errors.As(werr, &wce):
		return nil, werr
	case !errors.As(err, &ce):
		return nil, err
	}
	rank := map[string]int{}
	for i, f := range cfg.Files {
		rank[f] = i
	}
	where := func(p string) (int, int) {
		file, rest, _ := strings.Cut(p, ":")
		line, _ := strconv.Atoi(strings.SplitN(rest, ":", 2)[0])
		return rank[file], line
	}
	all := append(slices.Clone(ce.Problems), wce.Problems...)
	slices.SortStableFunc(all, func(a, b string) int {
		fa, la := where(a)
		fb, lb := where(b)
		if fa != fb {
			return fa - fb
		}
		return la - lb
	})
	return nil, &usrsvc.ConfigError{Problems: all}
}
