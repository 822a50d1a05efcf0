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
	"github.com/usrsvc/usrsvc/internal/suggest"
	"github.com/usrsvc/usrsvc/internal/version"
	"github.com/usrsvc/usrsvc/web"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: usrsvcd [--config FILE] [--foreground] [start|stop|restart|status|checkconfig|reread]

Actions (default start):
  start        start the daemon in the background (--foreground: stay attached, for systemd)
  stop         stop the daemon; managed programs keep running
  restart      stop then start the daemon; managed programs keep running
  status       exit 0 and print the daemon's pid if it runs, else exit 1
  checkconfig  load and check the whole configuration, print every problem (exit 0 or 130)
  reread       check the configuration, then make the running daemon reload it

Options:
`

// actions are the known actions.
var actions = map[string]bool{"start": true, "stop": true, "restart": true, "status": true,
	"checkconfig": true, "reread": true}

// run is usrsvcd's whole command line: it parses args, writes to stdout and
// stderr, and returns the exit code (exitcode.Code values).
func run(args []string, stdout, stderr io.Writer) int {
	// A closed stdout or stderr (usrsvcd start | true) must not kill us
	// with SIGPIPE: a write to it fails with EPIPE, which is ignored, and
	// the exit code stays the real outcome. The daemon, whose stdio may be
	// a pipe that closes, is never killed by it either.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	fs := cli.NewCommand("usrsvcd", usage, stderr)
	configPath := fs.String("config", "", "main config `FILE` (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)")
	foreground := fs.Bool("foreground", false, "with start: stay in the foreground (for systemd Type=notify)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	// Flags may come before or after the action.
	positional, help, err := fs.ParseArgs(args, stdout)
	if help {
		return int(exitcode.HelpMessage)
	}
	if err != nil {
		return int(exitcode.InvalidAction) // flag already printed the error and the usage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "usrsvcd %s\n", version.Version)
		return int(exitcode.Success)
	}
	action := "start"
	switch len(positional) {
	case 0:
	case 1:
		action = positional[0]
	default:
		fmt.Fprintf(stderr, "usrsvcd: one action expected, got %q\n", positional)
		fs.Usage()
		return int(exitcode.InvalidAction)
	}
	if !actions[action] {
		fmt.Fprintf(stderr, "usrsvcd: unknown action %q%s\n", action, didYouMean(action))
		fs.Usage()
		return int(exitcode.InvalidAction)
	}
	switch action {
	case "checkconfig":
		return checkConfig(*configPath, stdout, stderr)
	case "start":
		return actionStart(*configPath, *foreground, stdout, stderr)
	case "stop":
		return actionStop(*configPath, stdout, stderr)
	case "restart":
		return actionRestart(*configPath, *foreground, stdout, stderr)
	case "status":
		return actionStatus(*configPath, stdout, stderr)
	default: // reread
		return actionReread(*configPath, stdout, stderr)
	}
}

func didYouMean(action string) string {
	names := []string{"start", "stop", "restart", "status", "checkconfig", "reread"}
	if s := suggest.Closest(action, names); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
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
