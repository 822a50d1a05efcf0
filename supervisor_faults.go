package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

// The supervising loop under adverse conditions: a low open-file limit, a
// full disk, a daemon that was stopped (SIGSTOP) or starved. The rules:
//
//   - An error is never an exit. A process that cannot be read (out of open
//     files) is re-checked later; a pidfd that cannot be opened falls back
//     to polling /proc.
//   - Open files are budgeted from RLIMIT_NOFILE: a pidfd per watched
//     program up to what leaves room for a start, and a bounded number of
//     starts at a time (each needs about fdPerStart). A limit too low for
//     the programs is logged once at start, with the fix.
//   - A failed write (a state record, a pidfile, the reread
//     acknowledgement) is logged once per cause, and owed: retried every
//     owedRetry until it succeeds, which is logged once too.
//   - A run time is measured on the process's own clock (its start time
//     since boot) to the moment its exit was seen. When the loop could not
//     have seen it at once (it was stopped or starved: its heartbeat was
//     late; or the exit was found by a poll or a pass), the log gives the
//     bounds it knows instead of a figure that would be the time to
//     detection.

// Tunables.
const (
	// heartbeatPeriod is how often the loop notes that it runs, so that it
	// can tell an exit seen late because it was itself stopped.
	heartbeatPeriod = 5 * time.Second
	// owedRetry is how often owed writes are retried.
	owedRetry = 2 * time.Second
)

const (
	// heartbeatSlack is how late a heartbeat may be before the loop counts
	// itself as having been stopped or starved.
	heartbeatSlack = 2 * time.Second
	// fdReserved is what the daemon keeps for itself: stdio, log files,
	// the netpoller, inotify, locks, a /proc read or two at a time.
	fdReserved = 16
	// fdLaunchPeak is what starting a launcher holds for a moment: its
	// socket pair, os/exec's /dev/null and error pipe, its pidfd, a large
	// job's memory file. Launchers are started one at a time (a start joins
	// the launcher under way), so it is kept once, not per start.
	fdLaunchPeak = 10
	// fdPerStart is what one start in its success window holds: the
	// program's lock, and its share of a launcher (the socket and pidfd of a
	// launcher serving up to 64 starts). Measured: 40 starts in their
	// window held 42 open files more than none.
	fdPerStart = 2
)

// filePlan is how the loop spends its open files.
type filePlan struct {
	limit  uint64 // RLIMIT_NOFILE (soft; Go raised it to the hard one at start)
	pidfds int    // pidfds held at most; beyond, programs are polled
	starts int    // starts in progress at most
	n      int    // the programs it is for
	want   uint64 // what watching every program and starting all at once needs
}

// planFiles budgets limit open files for n programs: a start slot first,
// then a pidfd per program, then more start slots. A program has at most
// one start in progress, so starts never exceeds n: with a usual limit
// every program can start at once and no start waits for a slot.
func planFiles(limit uint64, n int) filePlan {
	p := filePlan{limit: limit, n: n, want: uint64(fdReserved + fdLaunchPeak + n + fdPerStart*n)}
	avail := int(min(limit, 1<<30)) - fdReserved - fdLaunchPeak
	p.pidfds = max(0, min(n, avail-fdPerStart))
	p.starts = max(1, min(max(n, 1), (avail-p.pidfds)/fdPerStart))
	return p
}

// fdPerOp is what one operation of a parallel DoAll holds at its peak:
// the program's lock, a pidfd (stop), a read of /proc or of the pidfile,
// its share of a launcher.
const fdPerOp = 4

// parallelOps is how many of n operations DoAll runs at once with limit
// open files: as many as it has files for, one at least.
func parallelOps(limit uint64, n int) int {
	avail := int(min(limit, 1<<30)) - fdReserved - fdLaunchPeak
	return max(1, min(n, avail/fdPerOp))
}

// tight reports whether the plan polls some programs or starts them
// fewer than 8 at a time (when there are more).
func (p filePlan) tight(n int) bool {
	return p.pidfds < n || p.starts < min(n, 8)
}

// nprocTight reports whether starting n programs could exhaust the
// account's process limit (RLIMIT_NPROC, which counts threads): the tasks
// of the account's processes (in mt's snapshot) plus about 4 per start (the
// program, the launcher's intermediate, their share of a launcher, a thread
// of the caller) and a margin for the caller and a launcher reach it. Never
// for root, whom the limit does not hold.
func nprocTight(mt *Matcher, n int) bool {
	var lim unix.Rlimit
	if os.Geteuid() == 0 || unix.Getrlimit(unix.RLIMIT_NPROC, &lim) != nil || lim.Cur == unix.RLIM_INFINITY {
		return false
	}
	snap := mt.cached()
	if snap == nil {
		return false
	}
	tasks := 0
	for _, p := range snap.Procs {
		tasks += max(p.Threads, 1)
	}
	return uint64(tasks+4*n+nprocMargin) > lim.Cur
}

// nprocMargin is the tasks the caller and a launcher may need beside the
// programs (Go runtimes: a handful of threads each).
const nprocMargin = 32

// nofileLimit is the soft RLIMIT_NOFILE.
func nofileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1 << 20
	}
	return lim.Cur
}

// planOpenFiles budgets the open files for the programs in l.progs, at
// start and at every reread (programs added by a reread get their share of
// start slots and pidfds), and warns when the limit becomes too low for
// them: once, until a reread makes it enough again.
func (l *loop) planOpenFiles() {
	n := len(l.progs)
	l.files = planFiles(nofileLimit(), n)
	l.admitStarts() // more slots: waiting starts go now
	if !l.files.tight(n) {
		l.warnedFiles = false
		return
	}
	if l.warnedFiles {
		return
	}
	l.warnedFiles = true
	fix := (l.files.want + 1023) / 1024 * 1024
	l.m.log.Warn(fmt.Sprintf("the open-file limit (%d) is low for %d programs: %d are watched by pidfd and %d by polling "+
		"/proc every %v, and starts run %d at a time; watching all and starting all at once needs about %d. "+
		"Raise it: LimitNOFILE=%d in the systemd unit, or ulimit -n %d before usrsvcd start",
		l.files.limit, n, l.files.pidfds, n-l.files.pidfds, pollPeriod, l.files.starts, l.files.want, fix, fix),
		"event", "warning")
}

// Start slots. Starts in progress are bounded by the open-file budget
// (l.files.starts), and the loop alone counts them: a start that finds
// every slot taken waits in l.queued, and is admitted when a start ends or
// a reread brings more slots. Slots bound open files, nothing else: with a
// usual limit there is one per program, so no start ever waits. When the
// limit is so low that starts must wait, a restart (the program ran and
// stopped: a crash, a monitor's restart, a retry after a failed start)
// goes before the first starts of programs (autostart at daemon start or
// reread, which come in bulk and may each hold a slot for a long
// success window), and those first starts may not take the last quarter of
// the slots (one at least, when there are two or more): a crashed program
// is restarted in a free slot at once, not behind the windows of programs
// starting for the first time.

// startReq is a start waiting for its slot.
type startReq struct {
	name    string
	first   bool   // autostart (first sight), not a restart
	monitor string // a monitor's restart
}

// reservedStarts is how many slots first starts leave to restarts: none
// when every program has its slot.
func (p filePlan) reservedStarts() int {
	if p.starts < 2 || p.starts >= p.n {
		return 0
	}
	return max(1, p.starts/4)
}

// queueStart admits req at once if a slot is free for it, else queues it.
func (l *loop) queueStart(req startReq) {
	l.queued = append(l.queued, req)
	l.admitStarts()
}

// admitStarts runs the queued starts that have a slot.
func (l *loop) admitStarts() {
	free, held := l.holdForDeps(l.queued)
	run, wait := l.files.admit(free, l.inFlight)
	l.queued = append(wait, held...)
	for _, req := range run {
		if sv := l.progs[req.name]; sv != nil && sv.busy {
			l.inFlight++
			l.runStart(sv, req.monitor)
		}
		// Else removed by a reread while it waited: nothing to start.
	}
}

// admit splits the queued starts into those that get a slot now, with
// inFlight slots taken, and those that wait: restarts first, then first
// starts within their share, each in the order they came.
func (p filePlan) admit(queued []startReq, inFlight int) (run, wait []startReq) {
	admitted := make([]bool, len(queued))
	for _, first := range []bool{false, true} {
		limit := p.starts
		if first {
			limit -= p.reservedStarts()
		}
		for i, req := range queued {
			if req.first == first && inFlight < limit {
				inFlight++
				admitted[i] = true
			}
		}
	}
	for i, req := range queued {
		if admitted[i] {
			run = append(run, req)
		} else {
			wait = append(wait, req)
		}
	}
	return run, wait
}

// spread adds up to a fifth of d at random, so that programs that failed
// together do not all retry in the same millisecond.
func spread(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + rand.N(d/5+1)
}

// openPidfd opens a pidfd on pid within the budget; nil means "poll it".
// A resource error is logged once per cause and the program asks for a
// pidfd again at its next poll; other errors (no pidfd support, seccomp)
// mean polling for good.
func (l *loop) openPidfd(sv *supervised, pid int) *proc.Pidfd {
	sv.pidfdRetry = false
	if l.pidfds >= l.files.pidfds {
		sv.pidfdRetry = true
		return nil
	}
	pfd, err := proc.PidfdOpen(pid)
	if err != nil {
		if errs.IsResource(err) {
			sv.pidfdRetry = true
			l.fault("pidfd", fmt.Sprintf("cannot open a pidfd (%s): programs are watched by polling /proc every %v "+
				"until one can be opened", errs.ResourceHelp(errnoOf(err)), pollPeriod), err)
		}
		return nil
	}
	l.pidfds++
	l.cleared("pidfd", "pidfds can be opened again")
	return pfd
}

// closePidfd closes sv's pidfd, giving it back to the budget.
func (l *loop) closePidfd(sv *supervised) {
	if sv.pidfd != nil {
		sv.pidfd.Close()
		sv.pidfd = nil
		l.pidfds--
	}
}

// errnoOf returns the errno err wraps, 0 when none.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	errors.As(err, &errno)
	return errno
}

// fault logs msg, the failure of what key names, unless key already failed
// for the same cause (an errno, else the error's text): a failure that
// repeats every retry is logged once. It reports whether it logged.
func (l *loop) fault(key, msg string, err error, attrs ...any) bool {
	cause := err.Error()
	if errno := errnoOf(err); errno != 0 {
		cause = errno.Error()
	}
	if l.faults == nil {
		l.faults = map[string]string{}
	}
	if l.faults[key] == cause {
		return false
	}
	l.faults[key] = cause
	l.m.log.Error(msg+"; not logged again for this cause", append(attrs, "event", "write-failed")...)
	return true
}

// resourceFault warns once, with the limit and the fix, when a start
// failed for want of processes (EAGAIN from fork or clone: the account's
// RLIMIT_NPROC, or the system's): every program's start fails then, and
// the backoff retries them; the warning is logged again only after starts
// worked in between.
func (l *loop) resourceFault(err error) {
	if !errors.Is(err, syscall.EAGAIN) {
		return
	}
	if l.faults == nil {
		l.faults = map[string]string{}
	}
	if _, warned := l.faults["nproc"]; warned {
		return
	}
	l.faults["nproc"] = syscall.EAGAIN.Error()
	l.m.log.Warn("programs cannot be started: "+errs.ResourceHelp(syscall.EAGAIN)+"; failed starts are retried with "+
		"backoff; not logged again until starts work", "event", "warning", "limit", "nproc")
}

// cleared logs msg once when key had failed, and forgets the failure.
func (l *loop) cleared(key, msg string, attrs ...any) {
	if _, failed := l.faults[key]; failed {
		delete(l.faults, key)
		l.m.log.Info(msg, attrs...)
	}
}

// checkPidfile makes sure that an autopid program's pidfile names its
// watched process, writing it when it does not (the launcher or the
// adopting scan could not, e.g. on a full disk); a failure is owed.
func (l *loop) checkPidfile(sv *supervised) {
	if !sv.pc.AutoPid || sv.proc == nil {
		sv.pidfileOwed = false
		return
	}
	want := fmt.Sprintf("%d", sv.proc.PID)
	if data, err := atomicfile.Read(sv.pc.Pidfile); err == nil && strings.TrimSpace(string(data)) == want {
		sv.pidfileOwed = false
		return
	}
	if sv.state == StateStoppedByHand {
		sv.pidfileOwed = false // being stopped by hand: its stop removes the pidfile
		return
	}
	if alive, known := l.alive(sv); !known || !alive {
		sv.pidfileOwed = !known // gone: a pidfile now would be stale at once
		return
	}
	key := "pidfile:" + sv.pc.Name
	if err := atomicfile.WritePid(sv.pc.Pidfile, sv.proc.PID); err != nil {
		sv.pidfileOwed = true
		l.fault(key, fmt.Sprintf("%s: cannot write pidfile: %v; it is written when writes succeed again",
			sv.pc.Name, errs.File("writing "+sv.pc.Pidfile, err)), err, "program", sv.pc.Name)
		return
	}
	sv.pidfileOwed = false
	l.cleared(key, fmt.Sprintf("%s: pidfile %s written again (pid %d)", sv.pc.Name, sv.pc.Pidfile, sv.proc.PID),
		"program", sv.pc.Name)
}

// recordsOwed reports whether a state record is owed: until none is, the
// failure of records is not over (one written while another fails is no
// recovery: on a full disk a rename frees the page the next write takes).
func (l *loop) recordsOwed() bool {
	for _, sv := range l.progs {
		if sv.recordOwed {
			return true
		}
	}
	return false
}

// owing reports whether a write is owed.
func (l *loop) owing() bool {
	if l.ackOwed != nil || l.lockOwed {
		return true
	}
	for _, sv := range l.progs {
		if sv.recordOwed || sv.pidfileOwed {
			return true
		}
	}
	return false
}

// retryOwed retries the owed writes.
func (l *loop) retryOwed(now time.Time) {
	l.retryAt = now.Add(owedRetry)
	if l.lockOwed {
		l.checkDaemonLock()
	}
	for _, name := range l.names() {
		sv := l.progs[name]
		if sv.recordOwed {
			l.record(sv)
		}
		if sv.pidfileOwed {
			l.checkPidfile(sv)
		}
	}
	if a := l.ackOwed; a != nil {
		l.writeAck(*a)
	}
}

// heartbeat notes, every heartbeatPeriod, that the loop's process runs
// (the time since boot, read by pidfd waiters), and the last gap: a beat
// that came late, because the process was stopped or starved in between.
type heartbeat struct {
	beat atomic.Int64 // time since boot of the last beat, ns
	mu   sync.Mutex
	gap  [2]time.Duration // the last gap: from the beat before it to the late beat
}

func (h *heartbeat) run(ctx context.Context) {
	h.beat.Store(int64(proc.Uptime()))
	t := time.NewTicker(heartbeatPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := proc.Uptime()
			if prev := time.Duration(h.beat.Load()); now-prev > heartbeatPeriod+heartbeatSlack {
				h.mu.Lock()
				h.gap = [2]time.Duration{prev, now}
				h.mu.Unlock()
			}
			h.beat.Store(int64(now))
		}
	}
}

// sawAt reports whether something noticed at up (time since boot) was
// noticed as it happened, and else since when it may have been waiting: the
// last beat when the heartbeat is late now, or the start of a gap that
// ended just before (the heartbeat and the waiter wake together when the
// process resumes, in either order).
func (h *heartbeat) sawAt(up time.Duration) (prompt bool, since time.Duration) {
	last := time.Duration(h.beat.Load())
	if up-last > heartbeatPeriod+heartbeatSlack {
		return false, last
	}
	h.mu.Lock()
	gap := h.gap
	h.mu.Unlock()
	if gap[1] != 0 && up-gap[1] <= heartbeatSlack {
		return false, gap[0]
	}
	return true, 0
}

// seen is when and how an exit was seen: up is the time since boot at
// detection; prompt is true when it was seen as it happened (a pidfd, the
// loop running); else alive is the last time since boot the process was
// known to run.
type seen struct {
	at     time.Time
	up     time.Duration
	prompt bool
	alive  time.Duration
	late   string // why it was not seen at once
}

// seenByPidfd is how a pidfd waiter saw an exit just now: at once, unless
// the heartbeat is late (the process was stopped or starved until now, so
// the exit may be older: it came after the last beat).
func (l *loop) seenByPidfd() seen {
	up := proc.Uptime()
	prompt, since := l.hb.sawAt(up)
	return seen{at: time.Now(), up: up, prompt: prompt, alive: since,
		late: "usrsvcd itself was stopped or starved when it exited"}
}

// seenLate is an exit found by a poll or a pass: it came after the
// process was last seen alive.
func (l *loop) seenLate(sv *supervised, how string) seen {
	return seen{at: time.Now(), up: proc.Uptime(), alive: sv.aliveUp, late: "found gone by " + how}
}

// runTime is how long p ran, from its own start, and its description:
// exact when the exit was seen at once, else bounds. least is the lower
// bound (what restart-count resets use).
func runTime(p *Process, sv *supervised, s seen) (least time.Duration, words string) {
	start := proc.StartUptime(p.StartTicks)
	if p.StartTicks == 0 || s.up == 0 {
		d := s.at.Sub(sv.since)
		return d, fmt.Sprintf("after running %v", d.Round(time.Millisecond))
	}
	most := max(0, s.up-start)
	if s.prompt {
		return most, fmt.Sprintf("after running %v", most.Round(time.Millisecond))
	}
	least = max(0, min(most, max(s.alive, sv.aliveUp)-start))
	return least, fmt.Sprintf("after running at least %v and at most %v (%s)",
		least.Round(time.Millisecond), most.Round(time.Millisecond), s.late)
}
