package usrsvc

import (
	"fmt"
	"time"
)

// Dependencies in usrsvcd's loop: a program with depends_on is started
// (autostart, restart after an exit, retry) only once every program it
// depends on runs and is not in the middle of a start of its own, whose
// success window includes its readiness (ready). Until then its start waits
// in the queue of starts, its state "starting" with the reason "waiting for
// dependency NAME". When the dependency will not come by itself (stopped by
// hand, gave up, stopped, disabled) the wait is logged at once, else after
// the dependency's ready_timeout (at least a minute); the start goes on
// whenever the dependency runs. A running program whose dependency stops
// or restarts is left alone: nothing is stopped or restarted in cascade.

// depWaitLog is the least wait before a dependency not yet up is logged.
const depWaitLog = time.Minute

// depBlocker returns the dependency sv waits for ("" when none) and its
// state, as the reason says it.
func (l *loop) depBlocker(sv *supervised) (name, why string, final bool) {
	if len(sv.pc.DependsOn) == 0 {
		return "", "", false
	}
	deps, _ := l.m.config().dependencies(sv.pc)
	for _, d := range deps {
		dv := l.progs[d]
		switch {
		case dv == nil:
			return d, "disabled", true
		case dv.proc != nil && !dv.busy:
			continue
		case dv.busy:
			return d, "starting", false
		}
		switch dv.state {
		case StateStoppedByHand, StateGaveUp, StateStopped, StateExited:
			return d, string(dv.state), true
		}
		return d, "not running", false
	}
	return "", "", false
}

// holdForDeps splits the queued starts into those whose dependencies run
// and those that wait for one, logging a wait as described above.
func (l *loop) holdForDeps(queued []startReq) (free, held []startReq) {
	now := l.m.now()
	for _, req := range queued {
		sv := l.progs[req.name]
		if sv == nil {
			free = append(free, req) // removed: admitStarts drops it
			continue
		}
		dep, why, final := l.depBlocker(sv)
		if dep == "" {
			if !sv.depSince.IsZero() {
				l.m.log.Info(fmt.Sprintf("%s: its dependencies run after %v: starting", sv.pc.Name,
					now.Sub(sv.depSince).Round(time.Millisecond)), "program", sv.pc.Name, "event", "dependencies-up")
			}
			sv.depSince, sv.depLogged = time.Time{}, false
			free = append(free, req)
			continue
		}
		held = append(held, req)
		reason := fmt.Sprintf("waiting for dependency %s (%s)", dep, why)
		if sv.depSince.IsZero() {
			sv.depSince = now
		}
		if sv.reason != reason {
			sv.reason = reason
			l.record(sv)
		}
		if sv.depLogged {
			continue
		}
		if final {
			sv.depLogged = true
			l.m.log.Warn(fmt.Sprintf("%s: not started: its dependency %s is %s; it starts once %s runs (usrsvc start %s)",
				sv.pc.Name, dep, why, dep, dep), "program", sv.pc.Name, "event", "dependency-wait", "dependency", dep)
		} else if wait := l.depWaitLimit(dep); now.Sub(sv.depSince) >= wait {
			sv.depLogged = true
			l.m.log.Warn(fmt.Sprintf("%s: dependency %s not ready after %v (%s); %s starts once it is",
				sv.pc.Name, dep, wait, why, sv.pc.Name), "program", sv.pc.Name, "event", "dependency-wait", "dependency", dep)
		}
	}
	return free, held
}

// depWaitLimit is how long a start waits for dependency dep before the
// wait is logged: its ready_timeout, at least depWaitLog.
func (l *loop) depWaitLimit(dep string) time.Duration {
	if pc := l.m.config().Program(dep); pc != nil {
		return max(depWaitLog, readyTimeout(pc), pc.SuccessSeconds)
	}
	return depWaitLog
}

// depDeadlines lists when a held start's wait is due to be logged.
func (l *loop) depDeadlines() []time.Time {
	var ts []time.Time
	for _, req := range l.queued {
		sv := l.progs[req.name]
		if sv == nil || sv.depSince.IsZero() || sv.depLogged {
			continue
		}
		if dep, _, _ := l.depBlocker(sv); dep != "" {
			ts = append(ts, sv.depSince.Add(l.depWaitLimit(dep)))
		}
	}
	return ts
}
