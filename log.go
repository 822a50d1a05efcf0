package usrsvc

import (
	"context"
	"log/slog"
)

// logEvent writes ev as one log line with its attributes.
func logEvent(l *slog.Logger, ev Event) {
	level := slog.LevelInfo
	switch ev.Kind {
	case EventStartFailed, EventGaveUp, EventMonitorFailed, EventReloadFailed, EventExited:
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
	if ev.OldPID != 0 {
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
	if ev.Code != 0 {
		attrs = append(attrs, slog.Int("code", int(ev.Code)), slog.String("code_name", ev.Code.String()))
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
	case EventReloaded:
		return "configuration reloaded: " + ev.Reason
	case EventReloadFailed:
		return "configuration reload failed, keeping the old one: " + ev.Reason
	}
	return string(ev.Kind) + " " + ev.Program
}
