// Package usrsvc manages the long-running programs of one Unix account
// without being their parent.
//
// Every program is launched fully detached: a launcher starts it in a new
// session and lets it go at the end of its success window, so its parent is
// init (or the session's subreaper), never the caller. Programs are found again by their pidfile,
// then by a regexp over the process titles of the account's own processes,
// and are identified by pid plus start time. So the supervising daemon can
// be killed, upgraded or restarted without any program stopping, and a new
// daemon adopts what runs.
//
// # Programs and configurations
//
// A [Config] holds the programs. Build one in Go with [NewConfig],
// [NewProgram] and [Config.Add], or read a configuration file with
// [LoadConfig]; [NewManager] checks either the same way. A [Manager] acts
// on a Config: [Manager.Do] runs an [Action] (start, stop, restart, status)
// on one program, [Manager.DoAll] on several, and [Manager.Run] supervises
// them until its context ends: it restarts what stops, runs the [Monitor]s
// and sends alerts through an [Alerter]. A [Matcher] finds a program's
// process on its own, without a Manager.
// Operations on a program are serialised by a lock in the state directory,
// so usrsvc, usrsvcd and an embedder can act on the same programs at once.
//
// Errors wrap sentinel errors ([ErrExited], [ErrLaunch], ...): test them
// with [errors.Is]. The command-line tools map them to their return codes.
//
// # The launcher
//
// Go cannot fork without exec, so a start runs a launcher: the running
// binary itself, re-executed through /proc/self/exe with the variable
// USRSVC_LAUNCHER=1 in its environment. An init function of this package's
// launcher (package usrsvc imports it, so it is initialised before usrsvc
// and before every package that imports usrsvc) recognises the marker,
// starts the programs it is sent and exits: the binary's main never runs.
// Starts under way at the same moment share a launcher, which gives each
// program a subreaper process of its own for its success window (see
// docs/design.md in the repository). So any binary
// that imports this package can start programs, and there is nothing to
// call. The cost to a binary that is not a launcher is one environment
// lookup at startup. It is an init function rather than a function to call
// first thing in main (as some re-exec libraries ask) because a binary that
// forgot that call would run its whole main as the launcher.
//
// A binary whose own initialisation is heavy (packages initialised before
// the launcher's, by import order) can point [Options.LauncherPath] at a
// small binary that imports this package; a start through a binary that is
// not a launcher fails with [ErrLaunch], saying so.
package usrsvc

import (
	_ "embed"

	"github.com/usrsvc/usrsvc/internal/manual"
)

// readme is README.md, for usrsvc --readme (through package manual).
//
//go:embed README.md
var readme string

func init() { manual.README = readme }
