package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// Monitor checks a running program beyond "is it running". usrsvcd runs a
// program's monitors every monitor_interval once the program has been up for
// monitor_after. When Check returns an error, usrsvcd restarts the program
// (stop + start under its lock) and alerts with the error as the reason —
// unless the error wraps [ErrMonitorUnavailable]: that is the monitor's own
// failure (it could not check), which is logged and never a restart.
//
// Check is called off the supervising loop with a context bounded by a
// timeout; it must return when ctx is done.
type Monitor interface {
	// Name is a short name for logs and alerts, such as "activityfile".
	Name() string
	// Check inspects p. nil means all is well; an error is the reason to
	// restart, or wraps ErrMonitorUnavailable when the check itself failed.
	Check(ctx context.Context, p Process) error
}

// configMonitors builds the monitors of a program's [[Monitor]] section: an
// [ActivityFile] when activityfile is set, then an [RSSLimit] reading fs
// when rss_limit is above 0. It does no I/O.
func configMonitors(pc *Program, fs proc.FS, environ []string) []Monitor {
	if pc == nil {
		return nil
	}
	var mons []Monitor
	if pc.ActivityFile != "" {
		mons = append(mons, activityFile{Path: pc.ActivityFile, Limit: pc.ActivityFileLimit})
	}
	if pc.RSSLimitKB > 0 {
		mons = append(mons, &rssLimit{LimitKB: pc.RSSLimitKB, fs: fs})
	}
	return append(mons, healthChecks(pc, environ)...)
}

// monitorsFor returns the program's monitors: those of its [[Monitor]]
// section, then those added with AddMonitor.
func (m *Manager) monitorsFor(pc *Program) []Monitor {
	var environ []string
	if pc.ExecCheck != "" {
		environ = m.environ() // only exec_check runs a command
	}
	mons := configMonitors(pc, m.fs, environ)
	m.monMu.Lock()
	for _, a := range m.monitors[pc.Name] {
		mons = append(mons, a.mon)
	}
	m.monMu.Unlock()
	return mons
}

// hasMonitors reports whether monitorsFor(pc) has any, without building
// them.
func (m *Manager) hasMonitors(pc *Program) bool {
	if pc.ActivityFile != "" || pc.RSSLimitKB > 0 || pc.hasChecks() {
		return true
	}
	m.monMu.Lock()
	defer m.monMu.Unlock()
	return len(m.monitors[pc.Name]) > 0
}

// monitorInterval is the program's monitor_interval (default 5 s).
func monitorInterval(pc *Program) time.Duration {
	if pc.MonitorInterval > 0 {
		return pc.MonitorInterval
	}
	return 5 * time.Second
}

// scheduleMonitors sets the first monitor round of a program that runs:
// monitor_after after it started.
func (l *loop) scheduleMonitors(sv *supervised) {
	sv.nextCheck = time.Time{}
	if !l.m.hasMonitors(sv.pc) {
		return
	}
	first := sv.since.Add(sv.pc.MonitorAfter)
	if now := l.m.now(); first.Before(now) {
		first = now
	}
	sv.nextCheck = first
}

type monitorResult struct {
	monitor string
	err     error
	health  bool          // a health check (its successes are reported too)
	took    time.Duration // how long the check took
}

// runMonitors checks the program off the loop, each monitor bounded by a timeout.
func (l *loop) runMonitors(sv *supervised) {
	mons := l.m.monitorsFor(sv.pc)
	if len(mons) == 0 {
		sv.nextCheck = time.Time{}
		return
	}
	sv.checking = true
	p, name := *sv.proc, sv.pc.Name
	l.spawn(func() {
		var results []monitorResult
		for _, mon := range mons {
			ctx, cancel := context.WithTimeout(l.ctx, monitorTimeout)
			t0 := time.Now()
			err := l.safeCheck(ctx, mon, p)
			took := time.Since(t0)
			cancel()
			_, isHealth := mon.(healthMonitor)
			if err != nil || isHealth {
				results = append(results, monitorResult{mon.Name(), err, isHealth, took})
			}
		}
		l.send(monitorMsg{name: name, p: &p, results: results})
	})
}

// safeCheck runs a monitor, turning a panic or a timeout into a monitor
// error. A panic is logged with its value and stack: it is a bug of the
// monitor, not a reason to restart the program.
func (l *loop) safeCheck(ctx context.Context, mon Monitor, p Process) (err error) {
	defer func() {
		if r := recover(); r != nil {
			l.m.log.Error(fmt.Sprintf("monitor %s panicked checking pid %d: %v\n%s", mon.Name(), p.PID, r, debug.Stack()),
				"monitor", mon.Name(), "pid", p.PID, "event", "monitor-panic")
			err = fmt.Errorf("%w: monitor panicked: %v", ErrMonitorUnavailable, r)
		}
	}()
	err = mon.Check(ctx, p)
	if err != nil && ctx.Err() != nil {
		err = errors.Join(ErrMonitorUnavailable, err)
	}
	return err
}

func (l *loop) onMonitor(msg monitorMsg) {
	sv := l.progs[msg.name]
	if sv == nil {
		return
	}
	sv.checking = false
	if sv.busy || sv.proc == nil || !same(sv.proc, msg.p) {
		return
	}
	sv.nextCheck = l.m.now().Add(monitorInterval(sv.pc))
	if l.onHealth(sv, msg.results) {
		return // restarted
	}
	for _, r := range msg.results {
		if r.health {
			continue
		}
		if errors.Is(r.err, ErrMonitorUnavailable) {
			l.m.emit(Event{Kind: EventMonitorError, Program: sv.pc.Name, Config: sv.pc, PID: sv.proc.PID, Monitor: r.monitor, Reason: r.err.Error()})
			continue
		}
		ev := Event{Kind: EventMonitorFailed, Program: sv.pc.Name, Config: sv.pc, PID: sv.proc.PID, Monitor: r.monitor,
			Reason: r.err.Error(), Restarts: sv.restarts + 1}
		l.m.emit(ev)
		l.alert(ev)
		sv.reason = "monitor " + r.monitor + ": " + r.err.Error()
		l.startProgram(sv, true, r.monitor)
		return
	}
}
