package usrsvc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// EventKind names what happened to a program.
type EventKind string

// The kinds of [Event].
const (
	EventStarted       EventKind = "started"        // a start succeeded (manual, autostart or restart)
	EventStartFailed   EventKind = "start-failed"   // a start failed (exec error, exited in the success window, no match)
	EventStopped       EventKind = "stopped"        // stopped on request; from Run: the exit of a program stopped by hand (Reason "by hand: ...")
	EventExited        EventKind = "exited"         // a running program stopped by itself (or was killed by someone else)
	EventRestarting    EventKind = "restarting"     // usrsvcd restarts a program found stopped
	EventGaveUp        EventKind = "gave-up"        // maxrestarts reached: no more automatic restarts
	EventMonitorFailed EventKind = "monitor-failed" // a monitor asked for a restart
	EventMonitorError  EventKind = "monitor-error"  // a monitor could not check
	EventAdopted       EventKind = "adopted"        // usrsvcd found the program running and watches it
	EventReloaded      EventKind = "reloaded"       // a reread applied a new configuration (Program ""), or a program was sent its reload_signal
	EventReloadFailed  EventKind = "reload-failed"  // a reread found errors; the old configuration stays
	// EventHealthFailed: a health check failed check_failures times in a
	// row; the program is unhealthy (restarted when check_action = restart).
	EventHealthFailed EventKind = "health-failed"
	// EventHealthRecovered: the health checks of an unhealthy program pass again.
	EventHealthRecovered EventKind = "health-recovered"
)

// Event is a typed record of something that happened, delivered alike to
// Options.OnEvent, the logs and the alerter.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Program string      // "" for daemon-wide events (reloaded)
	Config  *Program    // the program's configuration at the time, nil for daemon-wide events
	PID     int         // the process concerned, 0 if none (for restarting: the process that stopped, also in OldPID)
	OldPID  int         // for restarting: the process that stopped
	Exit    *ExitStatus // how the process ended, when known
	Reason  string      // human explanation: why it stopped, why it restarts, the monitor's reason; for reload-failed, every problem (file:line: message), one per line
	Monitor string      // the monitor's name for monitor events
	Err     error       // the error of a failed start (start-failed)
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

// logEvent writes ev as one log line with its attributes.
func logEvent(l *slog.Logger, ev Event) {
	level := slog.LevelInfo
	switch ev.Kind {
	case EventStartFailed, EventGaveUp, EventMonitorFailed, EventReloadFailed, EventExited, EventHealthFailed:
		level = slog.LevelWarn
	case EventMonitorError:
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("event", string(ev.Kind))}
	if ev.Program != "" {
		attrs = append(attrs, slog.String("program", ev.Program))
	}
	if ev.PID != 0 {
		attrs = append(attrs, slog.Int("pid", ev.PID))
	}
	if ev.OldPID != 0 && ev.OldPID != ev.PID {
		attrs = append(attrs, slog.Int("old_pid", ev.OldPID))
	}
	if ev.Exit != nil && ev.Exit.Known {
		if ev.Exit.Exited {
			attrs = append(attrs, slog.Int("exit_status", ev.Exit.Status))
		} else {
			attrs = append(attrs, slog.Int("signal", ev.Exit.Signal))
		}
	}
	if ev.Monitor != "" {
		attrs = append(attrs, slog.String("monitor", ev.Monitor))
	}
	if ev.Err != nil {
		code := exitcode.Of(ev.Err)
		attrs = append(attrs, slog.Int("code", int(code)), slog.String("code_name", code.String()))
	}
	if ev.Restarts != 0 {
		attrs = append(attrs, slog.Int("restarts", ev.Restarts))
	}
	if ev.Reason != "" {
		attrs = append(attrs, slog.String("reason", ev.Reason))
	}
	l.LogAttrs(context.Background(), level, eventMessage(ev), attrs...)
}

func eventMessage(ev Event) string {
	switch ev.Kind {
	case EventStarted:
		return ev.Program + " started"
	case EventStartFailed:
		return ev.Program + " failed to start: " + ev.Reason
	case EventStopped:
		if strings.HasPrefix(ev.Reason, "by hand") {
			// usrsvcd saw the exit of a program stopped with usrsvc stop.
			return ev.Program + " stopped " + ev.Reason
		}
		return ev.Program + " stopped"
	case EventExited:
		return ev.Program + " exited: " + ev.Reason
	case EventRestarting:
		return ev.Program + " restarting: " + ev.Reason
	case EventGaveUp:
		return ev.Program + " gave up: " + ev.Reason
	case EventMonitorFailed:
		return ev.Program + " monitor " + ev.Monitor + " failed: " + ev.Reason
	case EventMonitorError:
		return ev.Program + " monitor " + ev.Monitor + " could not check: " + ev.Reason
	case EventAdopted:
		return ev.Program + " adopted"
	case EventHealthFailed:
		return ev.Program + " unhealthy: " + ev.Reason
	case EventHealthRecovered:
		return ev.Program + " healthy again"
	case EventReloaded:
		if ev.Program != "" {
			return ev.Program + " " + ev.Reason
		}
		return "configuration reloaded: " + ev.Reason
	case EventReloadFailed:
		// The problems are in the reason, one per line: not repeated here.
		n := strings.Count(ev.Reason, "\n") + 1
		if n == 1 {
			return "configuration reload failed, keeping the old one: 1 problem"
		}
		return fmt.Sprintf("configuration reload failed, keeping the old one: %d problems", n)
	}
	return string(ev.Kind) + " " + ev.Program
}

// exitFromRecord is the ExitStatus a state record holds.
func exitFromRecord(e *statedir.Exit) *ExitStatus {
	if e == nil {
		return nil
	}
	x := ExitStatus(*e)
	return &x
}

// recordExit is e as a state record holds it.
func recordExit(e *ExitStatus) *statedir.Exit {
	if e == nil {
		return nil
	}
	x := statedir.Exit(*e)
	return &x
}
