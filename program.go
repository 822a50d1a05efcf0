package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

// how an operation was asked for: by hand (usrsvc, an embedder) or by usrsvcd.
type origin int

const (
	byHand origin = iota
	byDaemon
	// byHandRestart: the stop and start of a manual restart, recorded once
	// as "restart" so usrsvcd neither counts nor alerts the exit it sees.
	byHandRestart
)

func (m *Manager) lockTimeout(pc *Program) time.Duration {
	if m.opts.LockTimeout > 0 {
		return m.opts.LockTimeout
	}
	t := pc.TermToKill + pc.SuccessSeconds + 5*time.Second
	if t < 31*time.Second {
		t = 31 * time.Second
	}
	return t
}

func (m *Manager) lock(ctx context.Context, pc *Program) (*os.File, error) {
	return m.state().Lock(ctx, pc.Name, m.lockTimeout(pc))
}

// start runs under the program's lock.
func (m *Manager) start(ctx context.Context, pc *Program, mt *Matcher, by origin, lock *os.File) (*Status, error) {
	st := &Status{Program: pc.Name}
	if by == byHand {
		if err := m.state().SetManual(pc.Name, string(ActionStart), m.now()); err != nil {
			return st, err
		}
	} else if stopped, _, err := m.state().StoppedByHand(pc.Name); errs.IsResource(err) {
		// Whether it was stopped by hand cannot be read now: do not start it.
		return st, errs.File("reading the manual record of "+pc.Name, err)
	} else if stopped {
		// Stopped by hand while usrsvcd waited for the lock: leave it.
		st.Message, st.State = "stopped by hand: not started", StateStoppedByHand
		return st, nil
	}
	found, err := mt.find(pc)
	if err != nil {
		return st, err
	}
	st.Warnings = append(st.Warnings, found.Warnings...)
	if found.Process != nil {
		st.Running, st.WasRunning, st.Process, st.Message = true, true, found.Process, "already running"
		return st, nil
	}
	// The marker that lets a stop by hand cancel this start in its window
	// (see lockForStop). Without it (a full disk) such a stop waits for
	// the window, as before.
	began := m.now()
	sd := m.state()
	_ = sd.SetStarting(pc.Name)
	p, warnings, note, err := m.launch(ctx, pc, lock)
	if ctx.Err() == nil {
		// Else the launcher may still run the window, holding the lock:
		// the marker stays with it (whoever takes the lock next removes it).
		sd.ClearStarting(pc.Name)
	}
	st.Warnings = append(st.Warnings, warnings...)
	if err != nil {
		var le *launchError
		if errors.As(err, &le) {
			st.Message = le.message
			st.LastExit, st.Stderr = le.exit, le.stderr
		}
		if rec, _ := sd.Manual(pc.Name); rec != nil && rec.Action == string(ActionStop) && rec.Time.After(began) {
			// A stop by hand cancelled it: the program ended by that stop.
			st.State = StateStoppedByHand
			st.Message = "start cancelled by a stop by hand during its success window"
			return st, fmt.Errorf("%w: start of %s cancelled: it was stopped by hand during its success window (%v)",
				ErrFailed, pc.Name, err)
		}
		ev := Event{Kind: EventStartFailed, Program: pc.Name, Config: pc, Reason: err.Error(), Err: err}
		if le != nil {
			ev.Exit = le.exit
		}
		m.emit(ev)
		return st, err
	}
	// The launcher read the process at the end of the window: no second look.
	st.Running, st.Process, st.Message = true, p, "started"
	if note != "" {
		st.Message += " (" + note + ")"
	}
	m.emit(Event{Kind: EventStarted, Program: pc.Name, Config: pc, PID: p.PID})
	return st, nil
}

// checkRestart runs, before a restart stops the program, the checks its
// start would make before launching (buildJob: the pidfile's, stdout's and
// stderr's directories writable, the working directory, the executable
// found in the program's PATH). When one fails and the program runs, the
// restart is refused and the program left running: the error (the check's,
// so its code: 136, 137) says so. When it does not run, the restart goes
// on, and its start reports the problem.
func (m *Manager) checkRestart(pc *Program, mt *Matcher) (*Status, error) {
	_, cerr := m.buildJob(pc)
	if cerr == nil {
		return nil, nil
	}
	found, err := mt.find(pc)
	if err != nil || found.Process == nil {
		return nil, nil
	}
	p := found.Process
	st := &Status{Program: pc.Name, Running: true, WasRunning: true, Process: p, Warnings: found.Warnings,
		Message: fmt.Sprintf("not restarted; keeps running (pid %d)", p.PID)}
	return st, fmt.Errorf("not restarted: %w; %s keeps running (pid %d)", cerr, pc.Name, p.PID)
}

// lockForStop takes the program's lock for a stop by hand. While a start
// holds it in its success window — its marker (programs/NAME.starting)
// says so — the stop cancels that start rather than wait for the end of
// the window (an hour with success_seconds = 3600, and Ctrl-C of the
// starter does not end it: its launcher goes on). It records the manual
// stop, so that nothing starts the program again, then stops the process
// being started as a stop would — found by the pidfile, then the scan
// (scan_for_process; a scan that finds it does not write the pidfile),
// pid + start time re-checked, SIGTERM through a pidfd, SIGKILL after
// term_to_kill_seconds — looking again every 200 ms until the lock is
// free (the program may not have exec'd yet). The launcher sees its program
// gone, ends the window, and lets the lock go; the starter reports its
// start as cancelled by a stop. cancelled is the process it stopped, nil
// when none.
func (m *Manager) lockForStop(ctx context.Context, pc *Program) (lock *os.File, cancelled *Process, err error) {
	sd := m.state()
	recorded := false
	var failed error
	lock, err = sd.LockWaiting(ctx, pc.Name, m.lockTimeout(pc), func() {
		if starting, err := sd.Starting(pc.Name); err != nil || !starting || failed != nil {
			return
		}
		if !recorded {
			if failed = sd.SetManual(pc.Name, string(ActionStop), m.now()); failed != nil {
				return
			}
			recorded = true
		}
		mt := m.matcher()
		mt.noWrite = true
		found, err := mt.find(pc)
		if err != nil || found.Process == nil {
			return // not exec'd yet, or cannot tell: look again
		}
		if _, err := m.terminate(ctx, pc, mt, found.Process); err == nil {
			cancelled = found.Process
		}
	})
	if err == nil && failed != nil {
		lock.Close()
		return nil, nil, failed
	}
	if err != nil && failed != nil {
		err = fmt.Errorf("%w (and the start under way could not be cancelled: %w)", err, failed)
	}
	return lock, cancelled, err
}

// stop runs under the program's lock.
func (m *Manager) stop(ctx context.Context, pc *Program, mt *Matcher, by origin) (*Status, error) {
	st := &Status{Program: pc.Name}
	if by == byHand {
		if err := m.state().SetManual(pc.Name, string(ActionStop), m.now()); err != nil {
			return st, err
		}
		st.State = StateStoppedByHand
	}
	found, err := mt.find(pc)
	if err != nil {
		return st, err
	}
	st.Warnings = append(st.Warnings, found.Warnings...)
	if found.Process == nil {
		st.Message = "not running"
		return st, nil
	}
	p := found.Process
	st.WasRunning = true
	how, err := m.terminate(ctx, pc, mt, p)
	if err != nil {
		st.Running, st.Process = true, p
		return st, err
	}
	if pc.AutoPid {
		if err := os.Remove(pc.Pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
			st.Warnings = append(st.Warnings, "cannot remove pidfile: "+err.Error())
		}
	}
	st.Message = how
	m.emit(Event{Kind: EventStopped, Program: pc.Name, Config: pc, PID: p.PID, Reason: how})
	return st, nil
}

// terminate sends SIGTERM, then SIGKILL after term_to_kill_seconds, and
// waits until the process is gone. Signals go through a pidfd opened and
// then re-checked against pid + start time + title, so a reused pid is
// never signalled.
func (m *Manager) terminate(ctx context.Context, pc *Program, mt *Matcher, p *Process) (string, error) {
	pfd, _ := proc.PidfdOpen(p.PID) // nil: no pidfd here, poll /proc
	if pfd != nil {
		defer pfd.Close()
	}
	if same, err := mt.check(pc, p); err != nil {
		return "", err // cannot tell whether it runs: never claim it stopped
	} else if !same {
		return "exited before it was signalled", nil
	}
	send := func(sig syscall.Signal) error {
		var err error
		if pfd != nil {
			err = pfd.Signal(sig)
		} else if same, cerr := mt.check(pc, p); cerr != nil {
			return cerr
		} else if same {
			err = syscall.Kill(p.PID, sig)
		}
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	first := pc.StopSignal
	if first == 0 {
		first = syscall.SIGTERM
	}
	name := unix.SignalName(first)
	// With stop_group, the rest of its session goes too: taken before the
	// first signal, each by pid and start time.
	var group *sessionGroup
	if pc.StopGroup {
		group = m.session(p)
	}
	if err := send(first); errors.Is(err, ErrResource) {
		return "", err
	} else if err != nil {
		return "", fmt.Errorf("%w: sending %s to %d: %w", ErrPermission, name, p.PID, err)
	}
	group.signal(first)
	deadline := time.Now().Add(pc.TermToKill)
	if m.waitGone(ctx, pfd, p, pc.TermToKill) && group.waitGone(ctx, deadline) {
		if first == syscall.SIGTERM {
			return "terminated", nil
		}
		return "stopped with " + name, nil
	}
	if ctx.Err() != nil {
		// Abandoned (Ctrl-C, daemon shutdown): never escalate to SIGKILL.
		return "", fmt.Errorf("%w: abandoned after %s to %d: %w", ErrFailed, name, p.PID, ctx.Err())
	}
	if err := send(syscall.SIGKILL); errors.Is(err, ErrResource) {
		return "", err
	} else if err != nil {
		return "", fmt.Errorf("%w: sending SIGKILL to %d: %w", ErrPermission, p.PID, err)
	}
	group.rescan()
	group.signal(syscall.SIGKILL)
	if m.waitGone(ctx, pfd, p, 10*time.Second) && group.waitGone(ctx, time.Now().Add(10*time.Second)) {
		return fmt.Sprintf("killed with SIGKILL after ignoring %s for %v", name, pc.TermToKill), nil
	}
	return "", fmt.Errorf("%w: process %d (or a process of its session) still runs after SIGKILL", ErrFailed, p.PID)
}

// sessionGroup is the rest of a program's session, for stop_group: the
// account's processes whose session id is the program's pid (the launcher
// starts a program as the leader of a new session). nil does nothing.
type sessionGroup struct {
	m       *Manager
	sid     int
	members []*proc.Process
}

// session returns the rest of p's session; nil when p leads none (an
// adopted program started otherwise), which a stop then leaves alone.
func (m *Manager) session(p *Process) *sessionGroup {
	q, err := m.fs.Stat(p.PID)
	if err != nil || q.SID != p.PID {
		if err == nil {
			m.log.Warn(fmt.Sprintf("stop_group: process %d does not lead a session of its own (session %d): only it is signalled", p.PID, q.SID))
		}
		return nil
	}
	g := &sessionGroup{m: m, sid: p.PID}
	g.rescan()
	return g
}

// rescan adds the processes that joined the session since.
func (g *sessionGroup) rescan() {
	if g == nil {
		return
	}
	snap, err := g.m.fs.Snapshot(os.Getuid())
	if err != nil {
		return
	}
	for _, q := range snap.Sorted() {
		if q.SID == g.sid && q.PID != g.sid && !q.Zombie() &&
			!slices.ContainsFunc(g.members, func(x *proc.Process) bool { return x.PID == q.PID && x.StartTicks == q.StartTicks }) {
			g.members = append(g.members, q)
		}
	}
}

// alive reports whether q is still the process it was (pid and start
// time) and has not exited.
func (g *sessionGroup) alive(q *proc.Process) bool {
	now, err := g.m.fs.Stat(q.PID)
	return err == nil && !now.Zombie() && now.StartTicks == q.StartTicks
}

// signal sends sig to the members still alive.
func (g *sessionGroup) signal(sig syscall.Signal) {
	if g == nil {
		return
	}
	for _, q := range g.members {
		if g.alive(q) {
			syscall.Kill(q.PID, sig)
		}
	}
}

// waitGone waits until every member is gone, or deadline.
func (g *sessionGroup) waitGone(ctx context.Context, deadline time.Time) bool {
	if g == nil {
		return true
	}
	for {
		left := slices.ContainsFunc(g.members, g.alive)
		if !left {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits up to d for p to exit; a zombie or a changed start time is gone.
func (m *Manager) waitGone(ctx context.Context, pfd *proc.Pidfd, p *Process, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if pfd != nil {
		return pfd.Wait(ctx) == nil || pfd.Exited()
	}
	gone := func() bool {
		q, err := m.fs.Stat(p.PID)
		if err != nil {
			return errors.Is(err, os.ErrNotExist) // any other error: cannot tell, look again
		}
		return q.Zombie() || q.StartTicks != p.StartTicks
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !gone() {
		select {
		case <-ctx.Done():
			return gone()
		case <-t.C:
		}
	}
	return true
}

// status never changes anything but a stale pidfile (removed) or a missing
// one after an adopting scan (written).
func (m *Manager) status(pc *Program, mt *Matcher) (*Status, error) {
	st := &Status{Program: pc.Name, Disabled: !pc.Enabled}
	found, err := mt.find(pc)
	if err != nil {
		return st, err
	}
	st.Warnings = found.Warnings
	if found.Process != nil {
		st.Running, st.WasRunning, st.Process, st.Message = true, true, found.Process, "running"
		setUsage(st, found.raw, !mt.shared, m.fs)
		if w := m.envChanged(pc, found.Process); w != "" {
			st.Warnings = append(st.Warnings, w)
		}
	} else {
		st.Message = "not running"
	}
	sd := m.state()
	// A manual stop matters only while the program does not run, so
	// status all reads one record for a running program, usrsvcd's; the
	// status of one program still reads the manual record, to warn when it
	// is broken.
	stopped := false
	if !st.Running || !mt.shared {
		var at time.Time
		stopped, at, err = sd.StoppedByHand(pc.Name)
		if err != nil {
			st.Warnings = append(st.Warnings, err.Error())
		}
		stopped = stopped && !st.Running
		if stopped {
			st.StoppedByHandAt = at
		}
	}
	rec, err := sd.Record(pc.Name)
	if err != nil {
		st.Warnings = append(st.Warnings, err.Error())
	}
	if rec != nil {
		st.Recorded, st.Restarts, st.LastExit = true, rec.Restarts, exitFromRecord(rec.LastExit)
		if mt.daemonUp(m.config()) {
			// With no daemon supervising, its last state is history, not
			// the present.
			st.State, st.NextTry, st.Reason = State(rec.State), rec.NextTry, rec.Reason
			if st.Running {
				st.Health, st.HealthReason, st.HealthAt, st.HealthFailures = rec.Health, rec.HealthReason, rec.HealthAt, rec.HealthFailures
			}
		}
	}
	if stopped {
		st.State = StateStoppedByHand
	}
	return st, nil
}

// setUsage fills st with the process's CPU and memory use, from what the
// matcher read; with private, the resident memory (RSS and private) is read
// from smaps_rollup, both at the same moment.
func setUsage(st *Status, q *proc.Process, private bool, fs proc.FS) {
	if q == nil {
		return
	}
	st.RSSKB = q.RSSPages * int64(os.Getpagesize()) / 1024
	st.CPUTime = time.Duration(q.UTime+q.STime) * time.Second / proc.ClockTicks
	if up := time.Since(q.Started).Seconds(); up > 0 {
		st.CPUPercent = st.CPUTime.Seconds() / up * 100
	}
	if private {
		if mem, err := fs.Memory(q.PID); err == nil {
			st.RSSKB, st.PrivateKB = mem.RSSKB, mem.PrivateKB
		}
	}
}

// envChanged says, for a program with an env_file or [[Env]], which of
// their variables a start now would set otherwise than the running process
// got ("" when none, or when it cannot tell): the file or the config
// changed since the program started, and a restart applies it.
func (m *Manager) envChanged(pc *Program, p *Process) string {
	if pc.EnvFile == "" && len(pc.Env) == 0 {
		return ""
	}
	running, err := m.fs.Environ(p.PID)
	if err != nil {
		return ""
	}
	now := map[string]string{}
	for _, kv := range running {
		k, v, _ := strings.Cut(kv, "=")
		now[k] = v
	}
	want := map[string]string{}
	for _, kv := range programEnv(pc, nil) {
		k, v, _ := strings.Cut(kv, "=")
		want[k] = v
	}
	var changed []string
	for k, v := range want {
		if got, ok := now[k]; !ok || got != v {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	slices.Sort(changed)
	return fmt.Sprintf("its environment changed since it started (%s, from env_file or [[Env]]): restart it to apply",
		strings.Join(changed, ", "))
}
