package usrsvc

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EventKind names what happened to a program.
type EventKind string

// The kinds of [Event].
const (
	EventStarted       EventKind = "started"        // a start succeeded (manual, autostart or restart)
	EventStartFailed   EventKind = "start-failed"   // a start failed (exec error, exited in the success window, no match)
	EventStopped       EventKind = "stopped"        // stopped on request
	EventExited        EventKind = "exited"         // a running program stopped by itself (or was killed by someone else)
	EventRestarting    EventKind = "restarting"     // usrsvcd restarts a program found stopped
	EventGaveUp        EventKind = "gave-up"        // maxrestarts reached: no more automatic restarts
	EventMonitorFailed EventKind = "monitor-failed" // a monitor asked for a restart
	EventMonitorError  EventKind = "monitor-error"  // a monitor could not check
	EventAdopted       EventKind = "adopted"        // usrsvcd found the program running and watches it
	EventReloaded      EventKind = "reloaded"       // a reread applied a new configuration
	EventReloadFailed  EventKind = "reload-failed"  // a reread found errors; the old configuration stays
)

// Event is a typed record of something that happened, delivered alike to
// Options.OnEvent, the logs and the alerter.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Program string         // "" for daemon-wide events (reloaded)
	Config  *ProgramConfig // the program's configuration at the time, nil for daemon-wide events
	PID     int            // the process concerned, 0 if none
	OldPID  int            // for restarts: the process that stopped
	Exit    *ExitStatus    // how the process ended, when known
	Reason  string         // human explanation: why it stopped, why it restarts, the monitor's reason
	Monitor string         // the monitor's name for monitor events
	Code    Code           // result code of the operation, for start failures
	// Restarts is the number of automatic restarts counted for maxrestarts.
	Restarts int
}

// ExitStatus is how a process ended. A program is not usrsvcd's child, so
// its status is known only when it was read before the process was reaped
// (always during the success window; best effort afterwards).
type ExitStatus struct {
	Time   time.Time
	Exited bool // true: Status is the exit status; false: killed by Signal
	Status int
	Signal int
	Known  bool // false when the status could not be read
}

// exitStatusOf decodes a wait status (from wait4, or from /proc/PID/stat of
// a zombie) seen at t.
func exitStatusOf(ws syscall.WaitStatus, t time.Time) *ExitStatus {
	e := &ExitStatus{Time: t, Known: true}
	if ws.Signaled() {
		e.Signal = int(ws.Signal())
	} else {
		e.Exited = true
		e.Status = ws.ExitStatus()
	}
	return e
}

// String says how the process ended, in words: "exited with status 3",
// "killed by signal 9 (SIGKILL)", or "exited (status unknown)" (also for
// a nil ExitStatus).
func (e *ExitStatus) String() string {
	switch {
	case e == nil || !e.Known:
		return "exited (status unknown)"
	case e.Exited:
		return fmt.Sprintf("exited with status %d", e.Status)
	}
	if name := unix.SignalName(syscall.Signal(e.Signal)); name != "" {
		return fmt.Sprintf("killed by signal %d (%s)", e.Signal, name)
	}
	return fmt.Sprintf("killed by signal %d", e.Signal)
}
