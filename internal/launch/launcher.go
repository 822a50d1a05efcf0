package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/logfile"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// caughtSignals are taken by the launcher before it starts the program, so
// that signals its caller ignored are back to their default disposition in
// the program (exec resets caught signals, not ignored ones), and so that
// the launcher itself is not stopped or killed by them during the window.
// Only the signals that need it are listed, since each one costs the
// launcher a round trip between two threads of Go's runtime:
//   - HUP and INT: Go's runtime leaves them ignored when they were ignored
//     at startup, and otherwise would die of them;
//   - TERM and QUIT: Go's runtime would die of them (the launcher finishes
//     its job whatever happens to its caller);
//   - CONT, TSTP, TTIN and TTOU: Go's runtime leaves the job-control signals
//     as it found them unless asked for them (an ignored one passed on to the
//     program was found by the chaos suite), and the launcher must not stop.
//
// Every other catchable signal (USR1, USR2, PIPE, ALRM, URG, WINCH, XCPU,
// XFSZ, VTALRM, IO, PWR, the real-time ones) already has Go's own handler
// from the launcher's startup, whatever the caller left: exec resets it to
// the default, and the handler ignores it meanwhile.
var caughtSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT,
	syscall.SIGCONT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}

// Bounds of the stderr lines reported with a failed start.
const (
	stderrLines = 20
	stderrBytes = 16 << 10
)

// The launcher hook: a binary that imports this package (package usrsvc
// does) and was started with the marker runs the launcher here and exits,
// before its main runs.
func init() {
	if IsLauncher() {
		// syscall.Exit: nothing to flush, and no exit hooks (the race
		// detector's pause would delay every start by a second in tests).
		syscall.Exit(Main())
	}
}

// Main is the launcher's main: it reads its job, runs it, reports the
// result and returns the process's exit code. It is called by package
// this package's init when [IsLauncher], which then exits at once.
func Main() int {
	res := os.NewFile(resultFd, "result")
	jobF := os.NewFile(jobFd, "job")
	if res == nil || jobF == nil {
		fmt.Fprintln(os.Stderr, "usrsvc launcher: started without its pipes")
		return 2
	}
	// No fd but stdio reaches the program: ours, and any our caller's
	// caller left without close-on-exec.
	closeOnExecFrom(jobFd)
	var job Job
	data, err := io.ReadAll(jobF)
	jobF.Close()
	// A job in JSON comes from a caller of an older build: it gets its
	// result in JSON too.
	asJSON := len(data) > 0 && data[0] != jobMagic
	report := func(r *Result) int {
		var out []byte
		if asJSON {
			out, _ = json.Marshal(r)
		} else {
			out = encodeResult(r)
		}
		res.Write(out) // the caller may have stopped waiting: nothing else to do
		res.Close()
		return 0
	}
	switch {
	case err != nil:
	case asJSON:
		err = json.Unmarshal(data, &job)
	case len(data) == 0:
		err = io.ErrUnexpectedEOF
	default:
		err = decodeJob(data, &job)
	}
	switch {
	case err != nil:
		return report(&Result{Outcome: Failed, Err: "reading the launch job: " + err.Error()})
	case job.Probe:
		return report(&Result{Outcome: Probed})
	}
	return report(job.run())
}

func (job *Job) run() *Result {
	// Catch the signals the caller may have ignored: exec resets caught
	// signals to their default disposition, not ignored ones.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, caughtSignals...)
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	// Orphaned descendants come back to us during the window, so we can
	// reap them and see fork-and-exit daemons. Without it (a kernel or a
	// sandbox that refuses it) a fork-and-exit daemon looks exited: the
	// result says so.
	subreaperErr := ""
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		subreaperErr = err.Error()
	}

	re, err := regexp.Compile(job.TitleRE)
	if err != nil {
		return &Result{Outcome: Failed, Err: "proctitle_re: " + err.Error()}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return &Result{Outcome: Failed, Err: err.Error(), Errno: errnoOf(err)}
	}
	out, err := openLog(job.Stdout)
	if err != nil {
		return &Result{Outcome: FilesFailed, Err: err.Error(), Errno: errnoOf(err)}
	}
	errf := out
	if job.Stderr != job.Stdout {
		if errf, err = openLog(job.Stderr); err != nil {
			return &Result{Outcome: FilesFailed, Err: err.Error(), Errno: errnoOf(err)}
		}
	}
	var errOffset int64
	if st, err := errf.Stat(); err == nil {
		errOffset = st.Size()
	}
	launched := time.Now()
	pid, err := syscall.ForkExec(job.Path, job.Argv, &syscall.ProcAttr{
		Dir:   job.Dir,
		Env:   job.Env,
		Files: []uintptr{devnull.Fd(), out.Fd(), errf.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	devnull.Close()
	out.Close()
	errf.Close()
	if err != nil {
		return &Result{Outcome: ExecFailed, Err: err.Error(), Errno: errnoOf(err)}
	}

	// The success window: reap whatever comes back to us; stop early when
	// the whole tree is gone.
	r := &Result{SubreaperErr: subreaperErr}
	deadline := time.NewTimer(job.Window)
	defer deadline.Stop()
	treeGone := false
wait:
	for {
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.ECHILD {
				treeGone = true
				break wait
			}
			if err != nil || wpid <= 0 {
				break
			}
			if wpid == pid {
				r.Wait, r.ExitTime = &ws, time.Now()
			}
		}
		select {
		case <-chld:
		case <-deadline.C:
			break wait
		}
	}
	r.Elapsed = time.Since(launched)
	failed := func(o Outcome) *Result {
		r.Outcome = o
		r.Stderr, _ = logfile.Tail(job.Stderr, errOffset, stderrLines, stderrBytes)
		return r
	}

	if treeGone {
		if len(job.ShellArgv) > 0 && r.Wait != nil && r.Wait.Exited() &&
			(r.Wait.ExitStatus() == 126 || r.Wait.ExitStatus() == 127) {
			return failed(ShellFailed)
		}
		return failed(Exited)
	}

	// End of the window: the live descendants of this launcher, read by
	// following the children files from it (its cost is the tree's, not
	// the machine's: 200 parallel starts do not each read every process).
	self, uid := os.Getpid(), os.Getuid()
	snap, err := settledTree(self, uid, settleWait)
	if err != nil {
		// What runs is unknown (a partial tree would pass live processes
		// for gone): leave it be, and report.
		return &Result{Outcome: Failed, Err: "reading /proc at the end of success_seconds: " + err.Error(), Errno: errnoOf(err)}
	}
	var tree, matches []*proc.Process
	for _, p := range snap.Descendants(self) {
		if p.Zombie() {
			continue
		}
		tree = append(tree, p)
		if p.UID == uid && re.MatchString(p.Title) && !sameArgs(p.Args, job.ShellArgv) {
			matches = append(matches, p)
		}
	}
	roots := proc.Roots(matches)
	if len(roots) == 0 {
		if len(tree) == 0 {
			return failed(Exited)
		}
		for _, p := range tree {
			r.Seen = append(r.Seen, p.Brief())
		}
		// What runs under another title would be launched again by the next
		// start and pile up: stop what this start launched.
		stopTree(tree, job.TermToKill)
		return failed(NoMatch)
	}
	chosen := roots[0]
	exe, _ := proc.Default().Exe(chosen.PID)
	r = &Result{Outcome: Started, SubreaperErr: subreaperErr, Process: &Process{PID: chosen.PID, StartTicks: chosen.StartTicks,
		Started: chosen.Started, Executable: exe, Title: chosen.Title, Args: chosen.Args}}
	for _, p := range roots[1:] {
		r.OtherRoots = append(r.OtherRoots, p.Brief())
	}
	if job.AutoPid {
		if err := atomicfile.WritePid(job.Pidfile, chosen.PID); err != nil {
			r.PidfileErr = err.Error()
		}
	}
	return r
}

// settleWait bounds how long the end of a window waits for processes in
// the middle of an exec (see settledTree).
const settleWait = 2 * time.Second

// readTree reads the descendants of a process; a variable for tests.
var readTree = func(pid, uid int) (*proc.Snapshot, error) { return proc.Default().Tree(pid, uid) }

// settledTree reads the live descendants of self at the end of the window.
// A process in the middle of an execve shows no command line yet (its new
// memory holds no arguments until the exec is done), and on a starved
// machine a program launched at the start of the window can still be there
// at its end: it would be taken for a process under another title and
// stopped. Such a process is given up to wait to finish its exec; after
// that, what is read is what counts.
func settledTree(self, uid int, wait time.Duration) (*proc.Snapshot, error) {
	deadline := time.Now().Add(wait)
	for {
		snap, err := readTree(self, uid)
		if err != nil || !execing(snap, self) || time.Now().After(deadline) {
			return snap, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// execing reports whether a live descendant of self has no command line
// yet.
func execing(snap *proc.Snapshot, self int) bool {
	for _, p := range snap.Descendants(self) {
		if !p.Zombie() && p.Title == "" {
			return true
		}
	}
	return false
}

// closeOnExecFrom marks every fd >= from close-on-exec.
func closeOnExecFrom(from int) {
	if unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		for fd := from; fd < 1024; fd++ {
			syscall.CloseOnExec(fd)
		}
		return
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err == nil && fd >= from {
			syscall.CloseOnExec(fd)
		}
	}
}

// stopTree stops the processes a failed start launched: SIGTERM, then
// SIGKILL after grace (at most 10 s), reaping what comes back to us. A pid
// is signalled only while it still has the start time seen in the snapshot.
func stopTree(tree []*proc.Process, grace time.Duration) {
	if grace > 10*time.Second {
		grace = 10 * time.Second
	}
	fs := proc.Default()
	alive := func(p *proc.Process) bool {
		q, err := fs.Stat(p.PID)
		return err == nil && !q.Zombie() && q.StartTicks == p.StartTicks
	}
	signal := func(sig syscall.Signal) (left int) {
		for _, p := range tree {
			if alive(p) {
				left++
				if sig != 0 {
					syscall.Kill(p.PID, sig)
				}
			}
		}
		return left
	}
	reap := func() {
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				return
			}
		}
	}
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		reap()
		if signal(0) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	signal(syscall.SIGKILL)
	time.Sleep(10 * time.Millisecond)
	reap()
}

func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
}

func sameArgs(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// errnoOf returns the errno err wraps, 0 when none.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	errors.As(err, &errno)
	return errno
}
