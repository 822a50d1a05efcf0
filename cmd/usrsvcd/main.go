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
	"syscall"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cli"
	"github.com/usrsvc/usrsvc/internal/suggest"
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
// stderr, and returns the exit code (usrsvc.Code values).
func run(args []string, stdout, stderr io.Writer) int {
	// A closed stdout or stderr (usrsvcd start | true) must not kill us
	// with SIGPIPE: a write to it fails with EPIPE, which is ignored, and
	// the exit code stays the real outcome. The daemon, whose stdio may be
	// a pipe that closes, is never killed by it either.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	fs := cli.NewCommand("usrsvcd", usage, stderr)
	configPath := fs.String("config", "", "main config `FILE` (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)")
	foreground := fs.Bool("foreground", false, "with start: stay in the foreground (for systemd Type=notify)")
	version := fs.Bool("version", false, "print the version and exit")
	// Flags may come before or after the action.
	positional, help, err := fs.ParseArgs(args, stdout)
	if help {
		return int(usrsvc.CodeHelpMessage)
	}
	if err != nil {
		return int(usrsvc.CodeInvalidAction) // flag already printed the error and the usage
	}
	if *version {
		fmt.Fprintf(stdout, "usrsvcd %s\n", usrsvc.Version)
		return int(usrsvc.CodeSuccess)
	}
	action := "start"
	switch len(positional) {
	case 0:
	case 1:
		action = positional[0]
	default:
		fmt.Fprintf(stderr, "usrsvcd: one action expected, got %q\n", positional)
		fs.Usage()
		return int(usrsvc.CodeInvalidAction)
	}
	if !actions[action] {
		fmt.Fprintf(stderr, "usrsvcd: unknown action %q%s\n", action, didYouMean(action))
		fs.Usage()
		return int(usrsvc.CodeInvalidAction)
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
	cfg, err := usrsvc.LoadConfig(path)
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
		return int(usrsvc.CodeOf(err))
	}
	fmt.Fprintf(stdout, "config OK: %s from %s (%s)\n",
		plural(len(cfg.Programs), "program"), plural(len(cfg.Files), "file"), cfg.Path)
	return int(usrsvc.CodeSuccess)
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
