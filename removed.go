package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/usrsvc/usrsvc/internal/statedir"
)

// Programs removed from the configuration. A reread that removes a program
// stops supervising it; what becomes of its process depends on [Main]
// stop_removed:
//
//   - false (the default, as usrsvcd always did: a reread never stops
//     anything, so an edit of the configuration cannot take a service
//     down): the process keeps running, unsupervised. It is never
//     invisible: the reread says "removed: NAME (still running, pid N)",
//     the daemon logs it, and its record stays in the state directory with
//     state "removed", the pid and the start time, so usrsvc status all
//     lists it ("NAME: removed from the configuration, still running (pid
//     N)") until it ends. usrsvcd looks at such processes at each
//     resolution pass and forgets them, record included, when they end.
//   - true (what supervisorctl update does): the reread stops it, as usrsvc
//     stop would (SIGTERM, SIGKILL after term_to_kill_seconds), without
//     recording a manual stop.
//
// A program that is only disabled (enabled = false) is still configured:
// usrsvc status shows it, and it is not stopped.

// removedProg is a program removed from the configuration whose process
// still runs.
type removedProg struct {
	pc *Program
	p  *Process
}

// retiredMsg is the end of the stop of a removed program (stop_removed).
type retiredMsg struct {
	name string
	p    *Process
	err  error
}

func (msg retiredMsg) handle(l *loop) { l.onRetired(msg) }

// retire is the end of sv's supervision, removed by a reread. It returns
// how the reread reports it: its name, and what runs.
func (l *loop) retire(sv *supervised, mt *Matcher) string {
	name := sv.pc.Name
	p := sv.proc
	l.unwatch(sv)
	if sv.busy {
		// An operation runs: its result tells what runs (onOpDone).
		return name + " (an operation on it was under way: see the log)"
	}
	if p == nil {
		// Not watched: it may run all the same (started by hand since).
		if found, err := mt.find(sv.pc); err == nil {
			p = found.Process
		}
	}
	if p == nil {
		l.m.state().RemoveRecords(name)
		return name
	}
	return l.orphan(sv.pc, p, sv)
}

// orphan handles the process p of a program removed from the
// configuration: stopped when stop_removed, else left running and listed.
// sv, when known, gives the record's restarts and last exit.
func (l *loop) orphan(pc *Program, p *Process, sv *supervised) string {
	o := &removedProg{pc: pc, p: p}
	if l.removed == nil {
		l.removed = map[string]*removedProg{}
	}
	l.removed[pc.Name] = o
	if l.m.config().StopRemoved {
		l.recordRemoved(o, sv, "removed from the configuration: being stopped (stop_removed = true)")
		ctx := l.ctx
		l.spawn(func() {
			_, err := l.m.do(ctx, ActionStop, pc, l.m.matcher(), byDaemon)
			l.send(retiredMsg{name: pc.Name, p: p, err: err})
		})
		return fmt.Sprintf("%s (being stopped: stop_removed = true, pid %d)", pc.Name, p.PID)
	}
	l.recordRemoved(o, sv, "removed from the configuration, still running")
	l.m.log.Warn(fmt.Sprintf("%s was removed from the configuration and still runs (pid %d): it is no longer supervised; "+
		"usrsvc status all lists it until it ends. Stop it with kill %d, or set stop_removed = true in [Main] "+
		"for a reread to stop the programs it removes", pc.Name, p.PID, p.PID),
		"program", pc.Name, "pid", p.PID, "event", "removed")
	return fmt.Sprintf("%s (still running, pid %d)", pc.Name, p.PID)
}

// recordRemoved writes the record of a removed program that runs.
func (l *loop) recordRemoved(o *removedProg, sv *supervised, reason string) {
	r := &statedir.Record{Program: o.pc.Name, State: string(StateRemoved), PID: o.p.PID, StartTicks: o.p.StartTicks,
		Updated: l.m.now(), Reason: reason}
	if o.pc.AutoPid {
		r.Pidfile = o.pc.Pidfile
	}
	if sv != nil {
		r.Restarts, r.LastExit, r.ManualSeen = sv.restarts, recordExit(sv.lastExit), sv.lastHand
	} else if old, err := l.m.state().Record(o.pc.Name); err == nil && old != nil {
		r.Restarts, r.LastExit, r.ManualSeen = old.Restarts, old.LastExit, old.ManualSeen
	}
	if err := l.m.state().WriteRecord(r); err != nil {
		l.fault("record", "cannot record state: "+err.Error(), err, "program", o.pc.Name)
	}
}

// onRetired ends the stop of a removed program.
func (l *loop) onRetired(msg retiredMsg) {
	o := l.removed[msg.name]
	if o == nil || !same(o.p, msg.p) {
		return // added back meanwhile
	}
	if msg.err != nil {
		l.m.log.Warn(fmt.Sprintf("%s was removed from the configuration, and stopping it (stop_removed = true) failed: %v; "+
			"it is listed as removed while it runs", msg.name, msg.err), "program", msg.name, "event", "removed")
		l.recordRemoved(o, nil, "removed from the configuration, still running: its stop failed")
		return
	}
	delete(l.removed, msg.name)
	l.m.state().RemoveRecords(msg.name)
}

// checkRemoved forgets the removed programs whose process has ended (at
// each resolution pass: a stat each).
func (l *loop) checkRemoved() {
	for name, o := range l.removed {
		q, err := l.m.fs.Stat(o.p.PID)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			continue // cannot tell: look again next pass
		}
		if err == nil && !q.Zombie() && q.StartTicks == o.p.StartTicks {
			continue
		}
		delete(l.removed, name)
		l.m.state().RemoveRecords(name)
		l.m.log.Info(fmt.Sprintf("%s, removed from the configuration, no longer runs (pid %d)", name, o.p.PID),
			"program", name, "pid", o.p.PID, "event", "removed-gone")
	}
}

// loadRemoved takes over, at start, the removed programs a previous
// daemon recorded: those still running are watched by the passes, the
// records of the others removed.
func (l *loop) loadRemoved(cfg *Config) {
	sd := l.m.state()
	names, err := sd.RecordNames()
	if err != nil {
		return
	}
	for _, name := range names {
		if cfg.Program(name) != nil || cfg.broken(name) != nil {
			continue
		}
		rec, err := sd.Record(name)
		if err != nil || rec == nil || State(rec.State) != StateRemoved {
			continue
		}
		p := l.m.removedProcess(rec)
		if p == nil {
			sd.RemoveRecords(name)
			continue
		}
		if l.removed == nil {
			l.removed = map[string]*removedProg{}
		}
		// Only its identity is needed from now on (checkRemoved).
		l.removed[name] = &removedProg{pc: &Program{Name: name}, p: p}
	}
}

// removedProcess returns the process a removed program's record names
// when it still runs (the same pid and start time), else nil.
func (m *Manager) removedProcess(rec *statedir.Record) *Process {
	if rec.PID <= 0 || rec.StartTicks == 0 {
		return nil
	}
	q, err := m.fs.Process(rec.PID)
	if err != nil || q.Zombie() || q.StartTicks != rec.StartTicks || q.UID != os.Getuid() {
		return nil
	}
	return m.matcher().toProcess(q)
}

// removedStatus is the status of a program removed from the configuration
// whose process still runs, as its record in the state directory tells;
// false when there is none, or it no longer runs.
func (m *Manager) removedStatus(name string) (*Status, bool) {
	rec, err := m.state().Record(name)
	if err != nil || rec == nil || State(rec.State) != StateRemoved {
		return nil, false
	}
	p := m.removedProcess(rec)
	if p == nil {
		return nil, false
	}
	return &Status{Program: name, Running: true, WasRunning: true, Process: p, State: StateRemoved,
		Recorded: true, Restarts: rec.Restarts, LastExit: exitFromRecord(rec.LastExit), Reason: rec.Reason,
		Message: fmt.Sprintf("removed from the configuration, still running (pid %d)", p.PID)}, true
}

// removedResults are the status results of the programs removed from the
// configuration that still run, for status all.
func (m *Manager) removedResults(ctx context.Context) []Result {
	cfg := m.config()
	names, err := m.state().RecordNames()
	if err != nil {
		return nil
	}
	var out []Result
	for _, name := range names {
		if ctx.Err() != nil || cfg.Program(name) != nil || cfg.broken(name) != nil {
			continue
		}
		if st, ok := m.removedStatus(name); ok {
			out = append(out, Result{Program: name, Action: ActionStatus, Status: st, Time: m.now()})
		}
	}
	return out
}
