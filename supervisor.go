package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/launch"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// Timings of the supervising loop.
const (
	// resolvePeriod is the full resolution pass: one snapshot that catches
	// programs started or stopped by other means.
	resolvePeriod = 30 * time.Second
	// pollPeriod is the /proc check of watched processes without a pidfd.
	pollPeriod = 2 * time.Second
	// resetUptime is how long a program must run straight for its restart
	// count to reset.
	resetUptime = 60 * time.Second
	// maxBackoff caps the delay between failed starts.
	maxBackoff = 60 * time.Second
	// reloadFollow is how long after a reload the exit of the program is
	// taken for a re-execution (a new process under its title), not a crash.
	reloadFollow = 60 * time.Second
	// monitorTimeout bounds one monitor check.
	monitorTimeout = 10 * time.Second
	// alertTimeout bounds one alert.
	alertTimeout = 30 * time.Second
)

// State is a supervised program's state, as usrsvcd records it and
// usrsvc status shows it.
type State string

// The states of a supervised program.
const (
	StateRunning       State = "running"
	StateStarting      State = "starting"        // a start is in its success window
	StateBackoff       State = "backoff"         // waiting to retry a failed start (restart_delay, backoff)
	StateGaveUp        State = "gave-up"         // maxrestarts reached: left stopped
	StateStoppedByHand State = "stopped-by-hand" // stopped with usrsvc stop: left stopped until started by hand
	StateStopped       State = "stopped"         // exited and autorestart = false, or autostart = false
	StateExited        State = "exited"          // exited as expected (autorestart = unexpected, a status of exit_codes): left down
	// StateRemoved: removed from the configuration by a reread, and still
	// running, unsupervised (usrsvc status all lists it until it ends).
	StateRemoved State = "removed"
)

// supervised is the loop's state of one program. Only the loop goroutine
// touches it.
type supervised struct {
	pc        *Program
	proc      *Process  // the watched process, nil when not running
	since     time.Time // when proc was started or adopted
	pidfd     *proc.Pidfd
	stopWatch context.CancelFunc
	state     State
	restarts  int // automatic restarts counted for maxrestarts
	// failures counts the consecutive failed starts and crashes less than
	// resetUptime after their start, for the backoff (see crashBackoff).
	failures int
	// retry: the next start retries a failed start (no alert for it).
	retry    bool
	nextTry  time.Time
	lastExit *ExitStatus
	lastHand time.Time // time of the last manual operation seen
	handOp   Action    // and its action: stop, start or restart
	// handStopped is the watched process when a manual stop was seen.
	handStopped *Process
	busy        bool      // an operation runs in a worker
	nextCheck   time.Time // next monitor round
	checking    bool
	polled      time.Time // last /proc check without a pidfd
	reason      string
	lastPID     int // the process that last stopped
	// aliveUp is the last time (since boot) proc was known to run.
	aliveUp time.Duration
	// pidfdRetry: polled for want of an open file; ask for a pidfd again.
	pidfdRetry bool
	// recordOwed, pidfileOwed: a write that failed, retried until it works.
	recordOwed, pidfileOwed bool
	// health of the current process (health checks), and whether a check ran.
	health        health
	healthChecked bool
	// checkStats count the health checks of the current process; written
	// with the record (statsWritten).
	checkStats   map[string]*statedir.CheckStats
	statsWritten time.Time
	// depSince: its start waits for a dependency since then (see
	// supervisor_deps.go); depLogged: that wait was logged.
	depSince  time.Time
	depLogged bool
}

// message is what other goroutines send the loop: the loop's goroutine
// alone touches the programs' state, and handles each message with its
// handle method.
type message interface{ handle(l *loop) }

// The messages to the loop.
type (
	exitMsg struct {
		name string
		p    *Process
		seen seen // when and how the exit was seen
	}
	opDoneMsg struct {
		name    string
		pc      *Program
		st      *Status
		err     error
		monitor string // non-empty for a monitor restart
	}
	monitorMsg struct {
		name    string
		p       *Process
		results []monitorResult
	}
	reloadMsg struct {
		cfg  *Config
		err  error
		done chan error
	}
	pokeMsg struct{ name string }
)

func (msg exitMsg) handle(l *loop)    { l.onExit(msg) }
func (msg opDoneMsg) handle(l *loop)  { l.onOpDone(msg) }
func (msg monitorMsg) handle(l *loop) { l.onMonitor(msg) }
func (msg reloadMsg) handle(l *loop)  { msg.done <- l.onReload(msg) }

// handle re-resolves a program whose manual record changed.
func (msg pokeMsg) handle(l *loop) {
	if sv := l.progs[msg.name]; sv != nil && !sv.busy {
		l.resolve(sv, l.m.matcher())
	}
}

// Run supervises the configuration's programs until ctx is done: it adopts
// what runs, starts enabled autostart programs that do not, notices at once
// when a program stops (pidfd) and restarts it per autorestart,
// restart_delay and maxrestarts, runs monitors, sends alerts, and applies
// [Manager.Reload]. Run never stops or signals a program when it returns:
// programs keep running.
//
// When ctx is done Run abandons what is in flight — a start goes on in its
// launcher, which records the program; a stop is never escalated to
// SIGKILL — and returns only when every goroutine it started has finished:
// its workers, the monitors' checks, the alerts being sent and its
// watchers. No [Options.OnEvent] call of Run's comes after it returns. A
// [Monitor] or an [Alerter] that ignores its context delays that return.
//
// Only one Run may supervise a state directory at a time; a second gets
// ErrDaemonRunning. Run returns nil when ctx ends it.
func (m *Manager) Run(ctx context.Context) error {
	lock, err := m.takeDaemonLock()
	if err != nil {
		return err
	}
	l := &loop{m: m, progs: map[string]*supervised{}, msgs: make(chan message, 64), daemonLock: lock, lockDir: m.state()}
	defer func() { l.daemonLock.Close() }() // the lock held at the end (see checkDaemonLock)
	// A launcher started ahead: a restart does not wait for one to start.
	defer launch.KeepReady(m.launcherPath())()
	return l.run(ctx)
}

// takeDaemonLock takes the state directory's daemon lock without waiting:
// ErrDaemonRunning when another supervisor holds it.
func (m *Manager) takeDaemonLock() (*os.File, error) {
	f, warn, err := m.state().TakeDaemonLock(m.config().DaemonPidfile)
	if warn != nil {
		m.log.Warn(warn.Error(), "event", "warning")
	}
	return f, err
}

type loop struct {
	m     *Manager
	progs map[string]*supervised
	msgs  chan message
	// ctx is Run's: every goroutine of the loop derives its context from
	// it, and wg waits for them all before Run returns.
	ctx      context.Context
	wg       sync.WaitGroup
	lastPass time.Time
	// generation counts rereads; usrsvcd reread waits for it to grow.
	generation int64

	// Adverse conditions (supervisor_faults.go).
	files       filePlan                // the open-file budget
	inFlight    int                     // starts in progress (their workers run)
	removed     map[string]*removedProg // removed from the configuration, still running
	queued      []startReq              // starts waiting for a slot
	warnedFiles bool                    // the low-limit warning was logged
	pidfds      int                     // pidfds open
	faults      map[string]string       // failing writes and checks: key → cause
	ackOwed     *statedir.ReloadAck     // a reread acknowledgement not written yet
	retryAt     time.Time               // next retry of owed writes
	hb          heartbeat               // tells an exit seen late
	hooks       hookLimiter             // the rate limit of [[Hook]] runs

	// The state directory (statewatch.go).
	daemonLock     *os.File            // the daemon lock held
	lockDir        statedir.Dir        // the state directory it locks
	lockOwed       bool                // the lock file is gone and could not be recreated yet
	lastAck        *statedir.ReloadAck // the last reread acknowledgement, written again with a recreated directory
	stopWatchState func()
	// fatal ends Run: another daemon took over the state directory.
	fatal  error
	sorted []string // l.progs' names, sorted (names); nil: to be made again
	// exits waits for the exits of every watched process with one
	// goroutine; nil (no epoll): a goroutine per process waits instead.
	exits *proc.ExitWatcher
}

// send hands msg to the loop, or drops it when Run is ending.
func (l *loop) send(msg message) {
	select {
	case l.msgs <- msg:
	case <-l.ctx.Done():
	}
}

// spawn runs f in a goroutine that Run waits for before it returns.
func (l *loop) spawn(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

func (l *loop) run(ctx context.Context) error {
	// Cancelled when Run ends for a fault of its own (l.fatal), so that
	// its goroutines end too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.ctx = ctx
	m := l.m
	m.setLoop(l)
	defer m.setLoop(nil)
	l.stopWatchState = l.watchState()
	if w, err := proc.NewExitWatcher(); err == nil {
		l.exits = w
	}

	ack, _ := m.state().ReloadAck()
	l.generation = ack.Generation
	l.apply(m.Config())
	l.loadRemoved(m.Config())
	l.planOpenFiles()
	l.hb.beat.Store(int64(proc.Uptime()))
	l.spawn(func() { l.hb.run(ctx) })
	l.pass()
	if m.opts.Ready != nil {
		m.opts.Ready()
	}
	for {
		now := m.now()
		wake := l.nextWake(now)
		timer := time.NewTimer(wake.Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			l.shutdown()
			l.stopWatchState()
			if l.exits != nil {
				l.exits.Close()
			}
			l.wg.Wait()
			return nil
		case msg := <-l.msgs:
			timer.Stop()
			msg.handle(l)
		case <-timer.C:
		}
		l.tick()
		if l.fatal != nil {
			cancel()
			l.shutdown()
			l.stopWatchState()
			if l.exits != nil {
				l.exits.Close()
			}
			l.wg.Wait()
			return l.fatal
		}
	}
}

// nextWake is the earliest time the loop has something to do.
func (l *loop) nextWake(now time.Time) time.Time {
	wake := l.lastPass.Add(resolvePeriod)
	if l.owing() && l.retryAt.Before(wake) {
		wake = l.retryAt
	}
	var buf [4]time.Time // one program's deadlines, without an allocation each
	for _, sv := range l.progs {
		for _, t := range sv.deadlines(buf[:0]) {
			if !t.IsZero() && t.Before(wake) {
				wake = t
			}
		}
	}
	for _, t := range l.depDeadlines() {
		if t.Before(wake) {
			wake = t
		}
	}
	if wake.Before(now) {
		wake = now
	}
	return wake
}

// deadlines appends to ts the times this program needs the loop.
func (sv *supervised) deadlines(ts []time.Time) []time.Time {
	if sv.busy {
		return ts
	}
	if sv.state == StateBackoff {
		ts = append(ts, sv.nextTry)
	}
	if sv.proc != nil {
		if sv.pidfd == nil {
			ts = append(ts, sv.polled.Add(pollPeriod))
		}
		if sv.restarts > 0 || sv.failures > 0 {
			ts = append(ts, sv.since.Add(resetUptime))
		}
		if !sv.checking && !sv.nextCheck.IsZero() {
			ts = append(ts, sv.nextCheck)
		}
	}
	return ts
}

// tick does what is due: backoff retries, polls without pidfd, restart
// count resets, monitors, and the periodic resolution pass.
func (l *loop) tick() {
	now := l.m.now()
	if !now.Before(l.lastPass.Add(resolvePeriod)) {
		l.pass()
	}
	if l.owing() && !now.Before(l.retryAt) {
		l.retryOwed(now)
	}
	for _, name := range l.names() {
		sv := l.progs[name]
		if sv.busy {
			continue
		}
		switch {
		case sv.state == StateBackoff && !now.Before(sv.nextTry):
			l.startProgram(sv, true, "")
		case sv.proc != nil:
			if sv.pidfd == nil && !now.Before(sv.polled.Add(pollPeriod)) {
				sv.polled = now
				switch alive, known := l.alive(sv); {
				case known && !alive:
					l.onExit(exitMsg{name: name, p: sv.proc, seen: l.seenLate(sv, "the /proc check")})
					continue
				case known && sv.pidfdRetry:
					l.watch(sv) // a pidfd may be had now
				}
			}
			if (sv.restarts > 0 || sv.failures > 0) && !now.Before(sv.since.Add(resetUptime)) {
				// Up resetUptime straight: no longer a crash loop.
				sv.restarts, sv.failures = 0, 0
				l.record(sv)
			}
			if !sv.checking && !sv.nextCheck.IsZero() && !now.Before(sv.nextCheck) {
				l.runMonitors(sv)
			}
		}
	}
	if len(l.queued) > 0 {
		// A dependency may have come up (adopted, started by hand).
		l.admitStarts()
	}
}

// names returns the programs' names, sorted: made again only when a
// reread adds or removes programs, not at every wake of the loop.
func (l *loop) names() []string {
	if l.sorted == nil {
		l.sorted = make([]string, 0, len(l.progs))
		for n := range l.progs {
			l.sorted = append(l.sorted, n)
		}
		sort.Strings(l.sorted)
	}
	return l.sorted
}

// alive re-checks a watched process without a pidfd: a zombie or a changed
// start time is gone. known is false when /proc could not be read (out of
// open files): that is no verdict, the next poll looks again.
func (l *loop) alive(sv *supervised) (alive, known bool) {
	p, err := l.m.fs.Stat(sv.proc.PID)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.fault("poll:"+sv.pc.Name, fmt.Sprintf("%s: cannot check process %d: %v; checking again in %v",
			sv.pc.Name, sv.proc.PID, err, pollPeriod), err, "program", sv.pc.Name)
		return true, false
	}
	l.cleared("poll:"+sv.pc.Name, sv.pc.Name+": its process can be checked again", "program", sv.pc.Name)
	alive = err == nil && !p.Zombie() && p.StartTicks == sv.proc.StartTicks
	if alive {
		sv.aliveUp = proc.Uptime()
	}
	return alive, true
}

// pass resolves every program not busy with one shared snapshot.
//
// A program watched through a pidfd is skipped: its exit wakes the loop at
// once, and manual operations arrive through inotify. So with every program
// running, the pass reads nothing, and the idle daemon costs nothing.
func (l *loop) pass() {
	l.lastPass = l.m.now()
	l.checkDaemonLock()
	l.checkRemoved()
	mt := l.m.matcher() // its snapshot is taken on first need, once
	for _, name := range l.names() {
		sv := l.progs[name]
		if !sv.busy && (sv.proc == nil || sv.pidfd == nil) {
			l.resolve(sv, mt)
		}
	}
}

// resolve looks for the program's process: adopt it when it runs and is not
// watched, notice when the watched one is gone, start it when it should run.
func (l *loop) resolve(sv *supervised, mt *Matcher) {
	kick := l.syncManual(sv)
	found, err := mt.find(sv.pc)
	if err != nil {
		// Nothing is concluded from an error: the next pass looks again.
		l.fault("resolve", fmt.Sprintf("cannot resolve %s: %v; trying again at the next pass", sv.pc.Name, err),
			err, "program", sv.pc.Name)
		return
	}
	l.cleared("resolve", "programs can be resolved again")
	for _, w := range found.Warnings {
		if found.Process == nil && sv.proc != nil && w == found.stale && found.stalePID == sv.proc.PID {
			// The pidfile of the watched process, which is gone: its exit
			// is told below (a stop by hand removes it a moment later).
			continue
		}
		l.m.log.Warn(sv.pc.Name+": "+w, "program", sv.pc.Name, "event", "warning")
	}
	if found.Process != nil {
		if sv.proc != nil && same(sv.proc, found.Process) {
			return
		}
		if sv.proc != nil {
			if same(sv.handStopped, sv.proc) {
				// Stopped by hand, and started again by hand already.
				l.m.emit(Event{Kind: EventStopped, Program: sv.pc.Name, Config: sv.pc, PID: sv.proc.PID,
					Reason: "by hand (found gone by " + string(found.Via) + ", started again since)"})
			}
			l.unwatch(sv)
		}
		l.adopt(sv, found.Process, found.Via)
		return
	}
	if sv.proc != nil {
		l.onExit(exitMsg{name: sv.pc.Name, p: sv.proc, seen: l.seenLate(sv, "a resolution pass")})
		return
	}
	// Not running and not watched: start it if it should run.
	switch {
	case kick:
		l.startProgram(sv, false, "")
	case sv.state == "":
		// First sight (daemon start or added by reread): autostart.
		if !sv.pc.Autostart {
			sv.state = StateStopped
			l.record(sv)
			return
		}
		l.startProgram(sv, false, "")
	case sv.state == StateRunning || sv.state == StateStarting:
		// It was running and is gone without us seeing the exit.
		if sv.pc.Autorestart {
			sv.reason = "found stopped"
			l.restartAfterExit(sv, "found stopped", false)
		} else {
			sv.state = StateStopped
			l.record(sv)
		}
	}
}

// syncManual applies the last manual operation: a stop by hand makes the
// loop leave the program alone; a start by hand resets the restart count.
// It returns true when a manual start asks a program the loop had left
// stopped to run again.
//
// An operation already applied (by this loop, or by the daemon before it:
// its record's ManualSeen) is not applied again: a manual start must not
// reset the count twice. But a manual stop lasts: while the program does
// not run, it stays stopped by hand. A new daemon that restored ManualSeen
// and skipped the stop used to autostart the program, and count the
// refused start as a failure: backoff, restarts, a false gave-up alert.
func (l *loop) syncManual(sv *supervised) bool {
	rec, err := l.m.state().Manual(sv.pc.Name)
	if err != nil {
		l.m.log.Warn(err.Error(), "program", sv.pc.Name)
		return false
	}
	if rec == nil {
		return false
	}
	if !rec.Time.After(sv.lastHand) {
		if rec.Action == string(ActionStop) && sv.proc == nil && !sv.busy && sv.state != StateStoppedByHand {
			sv.handOp, sv.state = ActionStop, StateStoppedByHand
			sv.failures = 0
			l.record(sv)
		}
		return false
	}
	sv.lastHand, sv.handOp = rec.Time, Action(rec.Action)
	kick := false
	switch Action(rec.Action) {
	case ActionStop:
		sv.state = StateStoppedByHand
		sv.restarts, sv.failures = 0, 0
		if sv.proc != nil && !sv.busy {
			// The watched process is what this stop stops: its exit is
			// the stop's, whatever manual operation comes after it.
			sv.handStopped = sv.proc
		}
	case ActionStart, ActionRestart:
		sv.restarts, sv.failures = 0, 0
		switch sv.state {
		case StateStoppedByHand, StateGaveUp, StateBackoff, StateStopped:
			sv.state = StateStopped
			kick = true
		}
	}
	l.record(sv)
	return kick
}

func (l *loop) adopt(sv *supervised, p *Process, how via) {
	sv.proc, sv.since, sv.state, sv.failures = p, l.m.now(), StateRunning, 0
	if !p.Started.IsZero() && p.Started.Before(sv.since) {
		sv.since = p.Started
	}
	sv.aliveUp = proc.Uptime()
	l.scheduleMonitors(sv)
	l.watch(sv)
	l.record(sv)
	l.checkPidfile(sv)
	l.m.emit(Event{Kind: EventAdopted, Program: sv.pc.Name, Config: sv.pc, PID: p.PID, Reason: "found by " + string(how)})
}

// watch opens a pidfd on the watched process and waits for its exit with
// the other pidfds in one epoll set (l.exits), or else in a goroutine of
// its own parked in Go's netpoller; without a pidfd the loop polls.
func (l *loop) watch(sv *supervised) {
	p := sv.proc
	pfd := l.openPidfd(sv, p.PID)
	if pfd == nil {
		return // polled
	}
	// The pidfd is trusted only after re-checking pid + start time + title.
	// A check that cannot read /proc proves nothing: poll instead.
	// The goroutines below get the name, never sv: a reread replaces
	// sv.pc in the loop meanwhile.
	name := sv.pc.Name
	same, err := l.m.matcher().check(sv.pc, p)
	if err != nil || !same {
		pfd.Close()
		l.pidfds--
		if err != nil {
			sv.pidfdRetry = true
		} else {
			seen := l.seenLate(sv, "the check of its new pidfd")
			l.spawn(func() { l.send(exitMsg{name: name, p: p, seen: seen}) })
		}
		return
	}
	if l.exits != nil {
		stop, err := l.exits.Watch(pfd, func() { l.send(exitMsg{name: name, p: p, seen: l.seenByPidfd()}) })
		if err == nil {
			sv.pidfd, sv.stopWatch = pfd, func() { stop() }
			return
		}
	}
	ctx, cancel := context.WithCancel(l.ctx)
	sv.pidfd, sv.stopWatch = pfd, cancel
	l.spawn(func() {
		if pfd.Wait(ctx) == nil {
			l.send(exitMsg{name: name, p: p, seen: l.seenByPidfd()})
		}
	})
}

func (l *loop) unwatch(sv *supervised) {
	sv.resetHealth()
	if sv.stopWatch != nil {
		sv.stopWatch()
		sv.stopWatch = nil
	}
	l.closePidfd(sv)
	sv.proc = nil
	sv.pidfdRetry, sv.pidfileOwed = false, false
	sv.nextCheck = time.Time{}
}

// exitStatus reads how p ended while it is still a zombie (best effort: a
// program is not our child, its parent may reap it first).
func (l *loop) exitStatus(p *Process) *ExitStatus {
	now := l.m.now()
	q, err := l.m.fs.Stat(p.PID)
	if err == nil && q.Zombie() && q.StartTicks == p.StartTicks {
		return exitStatusOf(q.ExitStatus(), now)
	}
	return &ExitStatus{Time: now}
}

func (l *loop) onExit(msg exitMsg) {
	sv := l.progs[msg.name]
	if sv == nil || sv.proc == nil || !same(sv.proc, msg.p) {
		return
	}
	if sv.busy {
		// An operation of ours stops it (monitor restart): its result tells.
		l.unwatch(sv)
		return
	}
	exit := l.exitStatus(msg.p)
	if msg.seen.up == 0 {
		msg.seen = l.seenLate(sv, "a check")
	}
	sv.lastPID = msg.p.PID
	ranFor, ran := runTime(msg.p, sv, msg.seen)
	l.unwatch(sv)
	sv.lastExit = exit
	if ranFor >= resetUptime {
		sv.restarts, sv.failures = 0, 0
	}
	l.syncManual(sv)
	if sv.handOp == ActionReload && l.m.now().Sub(sv.lastHand) < reloadFollow && l.followReload(sv) {
		// It re-executed itself on its reload signal (a new master, the
		// old one exited): followed, neither counted nor alerted.
		l.m.log.Info(fmt.Sprintf("%s: process %d ended after its reload; following its successor %d", sv.pc.Name, msg.p.PID, sv.proc.PID),
			"program", sv.pc.Name, "event", "reload-followed", "pid", sv.proc.PID, "old_pid", msg.p.PID)
		return
	}
	reason := fmt.Sprintf("%s %s", exit, ran)
	// Stopped by hand: by the stop applied while it was watched (even when
	// a manual start came since: usrsvc stop, then start, faster than the
	// exit reached the loop), or by the last manual operation if it is a
	// stop or a restart made after it started.
	byHand := same(sv.handStopped, msg.p) ||
		((sv.handOp == ActionStop || sv.handOp == ActionRestart) && sv.lastHand.After(sv.since))
	sv.handStopped = nil
	switch {
	case byHand:
		// That stop's doing (usrsvc stop or restart, usrsvcweb): told once,
		// at INFO, as what it is, not as a crash.
		how := "by hand: "
		if sv.handOp == ActionRestart {
			how = "by hand (restart): "
		}
		l.m.emit(Event{Kind: EventStopped, Program: sv.pc.Name, Config: sv.pc, PID: msg.p.PID, Exit: exit,
			Reason: how + reason, Restarts: sv.restarts})
		if sv.handOp == ActionStop {
			sv.state = StateStoppedByHand
			l.record(sv)
			return
		}
		// Started (or restarted) by hand since: take the lock after that
		// start and adopt what it started (not counted, no alert).
		l.startProgram(sv, false, "")
		return
	case sv.state == StateStoppedByHand || sv.handOp == ActionStop:
		// The last manual operation is a stop, older than this process
		// (adopted after it): not restarted either.
		sv.state = StateStoppedByHand
		l.record(sv)
		l.m.emit(Event{Kind: EventExited, Program: sv.pc.Name, Config: sv.pc, PID: msg.p.PID, Exit: exit,
			Reason: reason + "; not restarted: stopped by hand before", Restarts: sv.restarts})
		return
	}
	l.m.emit(Event{Kind: EventExited, Program: sv.pc.Name, Config: sv.pc, PID: msg.p.PID, Exit: exit, Reason: reason, Restarts: sv.restarts})
	switch {
	case sv.pc.RestartUnexpected && expectedExit(exit, sv.pc.ExitCodes):
		sv.state = StateExited
		l.record(sv)
	case !sv.pc.Autorestart:
		sv.state = StateStopped
		l.record(sv)
	default:
		l.restartAfterExit(sv, reason, ranFor < resetUptime)
	}
}

// restartAfterExit restarts a program that stopped, unless maxrestarts is
// reached: at once, unless it is a crash loop (see crashBackoff). short
// says that it ran less than resetUptime.
func (l *loop) restartAfterExit(sv *supervised, reason string, short bool) {
	if sv.pc.MaxRestarts > 0 && sv.restarts >= sv.pc.MaxRestarts {
		l.giveUp(sv)
		return
	}
	sv.reason, sv.retry = reason, false
	if short {
		sv.failures++
	}
	if delay := crashBackoff(sv.pc.RestartDelay, sv.failures); delay > 0 {
		delay = spread(delay).Round(time.Millisecond)
		sv.nextTry, sv.state = l.m.now().Add(delay), StateBackoff
		l.m.log.Warn(fmt.Sprintf("%s: crash loop: %d failures in a row, each less than %v after its start (%s); next try in %v",
			sv.pc.Name, sv.failures, resetUptime, reason, delay), "program", sv.pc.Name, "event", "backoff")
		l.record(sv)
		return
	}
	l.startProgram(sv, true, "")
}

// crashBackoff is the wait before restarting a program that crashed after
// failures consecutive failures — failed starts, and crashes less than
// resetUptime (60 s) after their start, this one included. The first
// crash is restarted at once; from the second in a row, the backoff of
// failed starts applies: max(restart_delay, 1 s), doubling up to 60 s. So a
// program that crashes a few seconds after each successful start costs a
// start a minute, not one every few seconds, and shows as backoff with its
// next try. Running resetUptime straight ends the series.
func crashBackoff(restartDelay time.Duration, failures int) time.Duration {
	if failures < 2 {
		return 0
	}
	return backoff(restartDelay, failures-1)
}

func (l *loop) giveUp(sv *supervised) {
	if sv.state == StateGaveUp {
		return
	}
	sv.state = StateGaveUp
	l.record(sv)
	ev := Event{Kind: EventGaveUp, Program: sv.pc.Name, Config: sv.pc, Restarts: sv.restarts, Exit: sv.lastExit,
		Reason: fmt.Sprintf("maxrestarts (%d) reached; not restarting until a manual start or a reread that changes it", sv.pc.MaxRestarts)}
	l.m.emit(ev)
	l.alert(ev)
}

// startProgram starts sv in a worker; restart counts it for maxrestarts.
func (l *loop) startProgram(sv *supervised, restart bool, monitor string) {
	if restart {
		if sv.pc.MaxRestarts > 0 && sv.restarts >= sv.pc.MaxRestarts {
			l.giveUp(sv)
			return
		}
		sv.restarts++
		ev := Event{Kind: EventRestarting, Program: sv.pc.Name, Config: sv.pc, Restarts: sv.restarts, Exit: sv.lastExit,
			Reason: sv.reason, PID: sv.lastPID, OldPID: sv.lastPID}
		if monitor == "" {
			l.m.emit(ev)
			if !sv.retry {
				// A restart after an exit: a retry after a failed start
				// was alerted with the exit that began the series.
				l.alert(ev)
			}
		}
	}
	if monitor != "" {
		l.unwatch(sv)
	}
	first := !restart && sv.state == ""
	sv.busy, sv.state = true, StateStarting
	l.record(sv)
	l.queueStart(startReq{name: sv.pc.Name, first: first, monitor: monitor})
}

// runStart runs sv's start (a restart for a monitor) in a worker, which
// holds one of the start slots (see admitStarts) until the loop has its
// result.
func (l *loop) runStart(sv *supervised, monitor string) {
	pc, name := sv.pc, sv.pc.Name
	action := ActionStart
	if monitor != "" {
		action = ActionRestart
	}
	l.spawn(func() {
		st, err := l.m.do(l.ctx, action, pc, l.m.matcher(), byDaemon)
		l.send(opDoneMsg{name: name, pc: pc, st: st, err: err, monitor: monitor})
	})
}

func (l *loop) onOpDone(msg opDoneMsg) {
	l.inFlight--
	defer l.admitStarts()
	sv := l.progs[msg.name]
	if sv == nil {
		if msg.st != nil && msg.st.Running && msg.st.Process != nil && l.m.config().Program(msg.name) == nil {
			// Removed by a reread while it started: never invisible.
			l.orphan(msg.pc, msg.st.Process, nil)
		}
		return
	}
	sv.busy = false
	if msg.err == nil && msg.st != nil && msg.st.Running {
		l.cleared("nproc", "processes can be created again: programs start")
		// failures stays: it ends when the program runs resetUptime
		// straight (a crash after each success window is a crash loop).
		sv.reason, sv.retry = "", false
		l.syncManual(sv)
		l.adoptStarted(sv, msg.st.Process)
		return
	}
	l.syncManual(sv)
	if msg.monitor != "" && msg.st != nil && msg.st.Running && msg.st.Process != nil {
		// The monitor's restart was refused before the stop (its start
		// could not be made): the program keeps running, watched again.
		l.m.log.Warn(fmt.Sprintf("%s: the restart asked by monitor %s was not done: %v", msg.name, msg.monitor, msg.err),
			"program", msg.name, "event", "warning", "code", int(exitcode.Of(msg.err)))
		l.adoptStarted(sv, msg.st.Process)
		return
	}
	if msg.st != nil && msg.st.State == StateStoppedByHand && !msg.st.Running {
		// The start saw a manual stop (made while it waited for the lock),
		// or a stop by hand cancelled it in its window: not a failure.
		sv.state = StateStoppedByHand
		if msg.err != nil {
			l.m.log.Info(msg.name+": "+msg.st.Message, "program", msg.name, "event", "stopped")
		}
	}
	if sv.state == StateStoppedByHand {
		l.record(sv)
		return
	}
	l.resourceFault(msg.err)
	sv.failures++
	if msg.st != nil && msg.st.LastExit != nil {
		// How the launched process ended is the program's last exit.
		sv.lastExit = msg.st.LastExit
	}
	reason := "start failed"
	if msg.err != nil {
		reason = msg.err.Error()
	}
	sv.reason, sv.retry = reason, true
	if sv.pc.MaxRestarts > 0 && sv.restarts >= sv.pc.MaxRestarts {
		// No next try: say so, then give up.
		l.m.log.Warn(fmt.Sprintf("%s: start failed (%s); maxrestarts (%d) reached", msg.name, reason, sv.pc.MaxRestarts),
			"program", msg.name, "event", "start-failed", "code", int(exitcode.Of(msg.err)))
		l.giveUp(sv)
		return
	}
	delay := spread(backoff(sv.pc.RestartDelay, sv.failures)).Round(time.Millisecond)
	sv.nextTry = l.m.now().Add(delay)
	sv.state = StateBackoff
	l.m.log.Warn(fmt.Sprintf("%s: start failed (%s); next try in %v", msg.name, reason, delay),
		"program", msg.name, "event", "backoff", "code", int(exitcode.Of(msg.err)))
	l.record(sv)
}

func (l *loop) adoptStarted(sv *supervised, p *Process) {
	// since is when the process started, not when this message arrived: a
	// manual restart recorded in between must be seen as after it.
	sv.proc, sv.since, sv.aliveUp = p, l.m.now(), proc.Uptime()
	if !p.Started.IsZero() && p.Started.Before(sv.since) {
		sv.since = p.Started
	}
	// A stop by hand that landed after this start (it waited for the lock)
	// stops what was started: its exit is then not restarted.
	if sv.state != StateStoppedByHand {
		sv.state = StateRunning
	}
	l.scheduleMonitors(sv)
	l.watch(sv)
	l.record(sv)
	l.checkPidfile(sv)
}

// backoff is the wait after the n-th consecutive failed start: doubling
// from max(restart_delay, 1 s) up to 60 s, and never less than restart_delay.
func backoff(restartDelay time.Duration, n int) time.Duration {
	base := restartDelay
	if base < time.Second {
		base = time.Second
	}
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	if d < restartDelay {
		d = restartDelay
	}
	return d
}

// record writes the program's daemon record to the state directory.
func (l *loop) record(sv *supervised) {
	r := &statedir.Record{Program: sv.pc.Name, State: string(sv.state), Restarts: sv.restarts, LastExit: recordExit(sv.lastExit),
		Updated: l.m.now(), Reason: sv.reason, ManualSeen: sv.lastHand}
	if sv.state == StateBackoff {
		r.NextTry = sv.nextTry
	}
	if sv.pc.hasChecks() {
		r.Health = sv.health.state(sv.healthChecked)
		r.HealthReason, r.HealthAt = sv.health.last, sv.health.lastAt
		for _, n := range sv.health.failures {
			r.HealthFailures = max(r.HealthFailures, n)
		}
		r.Checks = sv.checkStats
		sv.statsWritten = l.m.now()
	}
	if sv.proc != nil {
		r.PID = sv.proc.PID
	}
	if err := l.m.state().WriteRecord(r); err != nil {
		sv.recordOwed = true
		l.fault("record", "cannot record state: "+err.Error()+"; records are written when writes succeed again",
			err, "program", sv.pc.Name)
		return
	}
	sv.recordOwed = false
	if !l.recordsOwed() {
		l.cleared("record", "state records are written again")
	}
}

// apply installs cfg's programs: new ones are added (resolved at the next
// pass), removed ones retired (see removed.go: those that run are stopped
// with stop_removed, else listed as removed), changed ones take the new
// settings and a fresh restart count. removed says what became of each.
func (l *loop) apply(cfg *Config) (added, removed, changed []string) {
	seen := map[string]bool{}
	for _, pc := range cfg.Programs {
		if !pc.Enabled {
			continue
		}
		seen[pc.Name] = true
		sv := l.progs[pc.Name]
		delete(l.removed, pc.Name) // back in the configuration: supervised again
		if sv == nil {
			sv = &supervised{pc: pc}
			l.restoreRecord(sv)
			l.progs[pc.Name] = sv
			l.sorted = nil
			added = append(added, pc.Name)
			continue
		}
		if !sv.pc.SameSettings(pc) {
			sv.pc = pc
			sv.restarts, sv.failures = 0, 0
			if sv.state == StateGaveUp || sv.state == StateBackoff {
				sv.state = StateStopped
				if pc.Autorestart {
					sv.state = ""
				}
			}
			if sv.proc != nil {
				l.scheduleMonitors(sv)
			}
			changed = append(changed, pc.Name)
		} else {
			sv.pc = pc
		}
	}
	var mt *Matcher
	for name, sv := range l.progs {
		if seen[name] {
			continue
		}
		delete(l.progs, name)
		l.sorted = nil
		if cfg.Program(name) != nil {
			// Disabled: still configured (status shows it), not stopped.
			l.unwatch(sv)
			removed = append(removed, name+" (disabled)")
			continue
		}
		if mt == nil {
			mt = l.m.matcher()
		}
		removed = append(removed, l.retire(sv, mt))
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return
}

// restoreRecord takes over what a previous daemon recorded: the restart
// count, the last exit, and having given up (a daemon restart is not one of
// the resets of maxrestarts).
func (l *loop) restoreRecord(sv *supervised) {
	rec, err := l.m.state().Record(sv.pc.Name)
	if err != nil || rec == nil {
		return
	}
	sv.restarts, sv.lastExit, sv.lastHand = rec.Restarts, exitFromRecord(rec.LastExit), rec.ManualSeen
	if State(rec.State) == StateGaveUp {
		sv.state, sv.reason = StateGaveUp, rec.Reason
	}
}

// shutdown stops watching. In-flight starts go on in their launchers, which
// record the programs; their workers see the cancelled context and return.
func (l *loop) shutdown() {
	for _, sv := range l.progs {
		if sv.stopWatch != nil {
			sv.stopWatch()
		}
		if sv.pidfd != nil {
			sv.pidfd.Close()
		}
	}
}

// followReload looks for the process that took over from one that exited
// after a reload (pidfile, then its title) and adopts it; false when there
// is none.
func (l *loop) followReload(sv *supervised) bool {
	found, err := l.m.matcher().find(sv.pc)
	if err != nil || found.Process == nil {
		return false
	}
	l.adopt(sv, found.Process, via("reload"))
	return true
}

// expectedExit reports whether an exit is expected by exit_codes (0 when
// unset): an exit status of the list, never a signal or an unknown status.
func expectedExit(e *ExitStatus, codes []int) bool {
	if e == nil || !e.Known || !e.Exited {
		return false
	}
	if codes == nil {
		return e.Status == 0
	}
	return slices.Contains(codes, e.Status)
}
