package launch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/launch/child"
	"github.com/usrsvc/usrsvc/internal/logfile"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// ignoredSignals are ignored by the launcher, which finishes its jobs
// whatever happens to its caller: Go's runtime would die of HUP, INT, TERM
// and QUIT, and stop for TSTP, TTIN and TTOU. Its other signals already
// have Go's handler, which ignores them. The programs get none of this:
// their intermediate sets every signal back to its default disposition.
var ignoredSignals = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU}

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

// Main is the launcher's main: it serves the jobs its caller sends on the
// socket it inherited (fd 3) until the caller closes it, finishes the jobs
// under way, and returns the process's exit code. It is called by this
// package's init when [IsLauncher], which then exits at once.
//
// For each job it receives it answers at once that it took it (so that a
// caller whose launcher dies knows which jobs to give another one), tells
// the pid of the program's process as soon as it is forked, and sends the
// result at the end. Its own failures go to its stderr, which the caller
// reads when the launcher ends without answering.
func Main() int {
	var st syscall.Stat_t
	if err := syscall.Fstat(connFd, &st); err != nil {
		logf("usrsvc launcher: started without its socket")
		return 2
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		logf("usrsvc launcher: fd 3 is not its socket: the caller is not a usrsvc of the same build")
		return 2
	}
	signal.Ignore(ignoredSignals...)
	launcherPid = uintptr(os.Getpid())
	nofile = originalNofile()

	var wg sync.WaitGroup
	buf := make([]byte, maxMessage)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	for {
		n, oobn, flags, _, err := syscall.Recvmsg(connFd, buf, oob, syscall.MSG_CMSG_CLOEXEC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			if err != nil && err != syscall.ECONNRESET {
				logf("usrsvc launcher: reading its socket: %v", err)
			}
			break // the caller closed its end (or died): finish what runs
		}
		// The fds passed: the program's lock, if any, then the job's file
		// when the job is too large to be sent inline.
		fds := receivedFds(oob[:oobn])
		if n < 5 {
			closeFds(fds)
			continue
		}
		id := binary.LittleEndian.Uint32(buf)
		if buf[4] == msgEnd {
			closeFds(fds)
			if n >= 6 {
				ends.end(id, buf[5])
			}
			continue
		}
		sendMsg(id, []byte{msgAck}, -1)
		data := buf[4:n]
		if data[0] == jobInFile && len(fds) > 0 {
			data, err = readJobFile(fds[len(fds)-1])
			fds = fds[:len(fds)-1]
		}
		var lock *os.File
		if len(fds) > 0 {
			lock = os.NewFile(uintptr(fds[0]), "lock")
			closeFds(fds[1:])
		}
		job := new(Job)
		switch {
		case err != nil:
		case flags&syscall.MSG_TRUNC != 0:
			err = fmt.Errorf("the job is larger than %d bytes", maxMessage)
		case len(data) == 0 || data[0] != jobMagic:
			err = errCodec
		default:
			err = decodeJob(data, job)
		}
		data = nil // the job's bytes are the job's now
		// The job's window is registered before the next message is
		// read: the caller's end (AwaitReady) may follow at once, when
		// the program is ready as soon as it starts.
		var end chan byte
		if err == nil && !job.Probe {
			end = ends.open(id)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r *Result
			switch {
			case err != nil:
				r = &Result{Outcome: Failed, Err: "reading the launch job: " + err.Error()}
			case job.Probe:
				r = &Result{Outcome: Probed}
			default:
				r = job.run(func(pid int) {
					sendMsg(id, binary.AppendUvarint([]byte{msgProgress}, uint64(pid)), -1)
				}, end)
			}
			if end != nil {
				ends.close(id)
			}
			job = nil
			sendResult(id, r)
			if lock != nil {
				lock.Close() // the program is recorded
			}
		}()
	}
	wg.Wait()
	return 0
}

// logf writes a line to the launcher's stderr (its caller reads it when
// the launcher ends without answering). Never blocks: the caller's pipe is
// non-blocking, and a full one loses the line.
func logf(format string, args ...any) {
	syscall.Write(2, []byte(fmt.Sprintf(format, args...)+"\n"))
}

// sendResult sends r to the caller: inline when it fits a message, in a
// memory file otherwise (a result carries the matched process's title and
// arguments, as large as its command line).
func sendResult(id uint32, r *Result) {
	payload := encodeResult(r)
	if len(payload) <= maxInline {
		err := sendMsg(id, payload, -1)
		if err == nil || err != syscall.EMSGSIZE {
			return
		}
	}
	f, err := jobFile(payload)
	if err != nil {
		logf("usrsvc launcher: the result of job %d (%d bytes) cannot be sent: %v", id, len(payload), err)
		// A short result instead, which says so.
		sendMsg(id, encodeResult(&Result{Outcome: Failed, Errno: errnoOf(err),
			Err: fmt.Sprintf("the launcher cannot send its result (%d bytes): %v", len(payload), err)}), -1)
		return
	}
	defer f.Close()
	sendMsg(id, []byte{resultInFile}, int(f.Fd()))
}

// sendMsg sends the message id+payload to the caller, with fd when it is
// not -1. A failure other than the caller being gone is logged.
func sendMsg(id uint32, payload []byte, fd int) error {
	msg := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(payload)), id)
	msg = append(msg, payload...)
	var oob []byte
	if fd >= 0 {
		oob = syscall.UnixRights(fd)
	}
	for {
		err := syscall.Sendmsg(connFd, msg, oob, nil, syscall.MSG_NOSIGNAL)
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EPIPE, syscall.ECONNRESET, syscall.ENOTCONN:
			return err // the caller is gone: nobody to tell
		}
		if err != syscall.EMSGSIZE {
			logf("usrsvc launcher: sending a message of %d bytes for job %d: %v", len(msg), id, err)
		}
		return err
	}
}

// receivedFds returns the fds passed with a message.
func receivedFds(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var all []int
	for _, m := range msgs {
		if fds, err := syscall.ParseUnixRights(&m); err == nil {
			all = append(all, fds...)
		}
	}
	return all
}

func closeFds(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// readJobFile reads a job passed as a file (and closes it).
func readJobFile(fd int) ([]byte, error) {
	f := os.NewFile(uintptr(fd), "job")
	defer f.Close()
	var b bytes.Buffer
	if st, err := f.Stat(); err == nil && st.Size() > 0 && st.Size() <= maxJobFile {
		b.Grow(int(st.Size()) + bytes.MinRead) // read whole, without growing
	}
	if _, err := b.ReadFrom(io.LimitReader(f, maxJobFile)); err != nil {
		return nil, fmt.Errorf("reading the job's file: %w", err)
	}
	return b.Bytes(), nil
}

// maxJobFile bounds a job read from a file.
const maxJobFile = 64 << 20

// The launcher's own facts, set by Main.
var (
	launcherPid uintptr
	nofile      *[2]uint64
)

// run runs job: forks its intermediate, watches the window, reads the
// tree, and says what is true at its end. progress is told the pid of the
// program's process once it is forked.
func (job *Job) run(progress func(pid int), end <-chan byte) *Result {
	own := *job // its Env and Argv are dropped once forked
	job = &own
	re, err := regexp.Compile(job.TitleRE)
	if err != nil {
		return &Result{Outcome: Failed, Err: "proctitle_re: " + err.Error()}
	}
	for _, l := range job.Limits {
		if limitName(l.Resource) == "" {
			return &Result{Outcome: Failed, Err: fmt.Sprintf("resource limit %d: not one of %s",
				l.Resource, strings.Join(limitNames(), ", "))}
		}
	}

	// Its files: stdio, and the two pipes of the intermediate.
	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer closeFiles()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return &Result{Outcome: Failed, Err: err.Error(), Errno: errnoOf(err)}
	}
	files = append(files, devnull)
	out, err := openLog(job.Stdout)
	if err != nil {
		return &Result{Outcome: FilesFailed, Err: err.Error(), Errno: errnoOf(err)}
	}
	files = append(files, out)
	errf := out
	if job.Stderr != job.Stdout {
		if errf, err = openLog(job.Stderr); err != nil {
			return &Result{Outcome: FilesFailed, Err: err.Error(), Errno: errnoOf(err)}
		}
		files = append(files, errf)
	}
	var errOffset int64
	if st, err := errf.Stat(); err == nil {
		errOffset = st.Size()
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return &Result{Outcome: Failed, Err: "report pipe: " + err.Error(), Errno: errnoOf(err)}
	}
	defer repR.Close()
	files = append(files, repW)
	execR, execW, err := os.Pipe()
	if err != nil {
		return &Result{Outcome: Failed, Err: "exec pipe: " + err.Error(), Errno: errnoOf(err)}
	}
	files = append(files, execR, execW)
	s, keep, err := childStart(job, [child.NFds]int{int(devnull.Fd()), int(out.Fd()), int(errf.Fd()),
		int(repW.Fd()), int(execW.Fd()), int(execR.Fd())})
	if err != nil {
		return &Result{Outcome: ExecFailed, Stage: StageExec, Err: err.Error(), Errno: errnoOf(err)}
	}
	// The job's bulk (its environment, up to 2 MB) is in s now, and in the
	// intermediate once forked: nothing keeps it in the launcher after.
	job.Env, job.Argv = nil, nil

	launched := time.Now()
	pid, errno := child.Fork(s)
	runtime.KeepAlive(keep)
	s, keep = nil, nil
	closeFiles()
	if errno != 0 {
		return &Result{Outcome: Failed, Stage: StageFork, Errno: errno,
			Err: "forking the program's intermediate process: " + errno.Error()}
	}

	// The intermediate's records, until it exits (EOF).
	records := make(chan [2]uint32, 8)
	go func() {
		defer close(records)
		var b [child.RecSize]byte
		for {
			if _, err := io.ReadFull(repR, b[:]); err != nil {
				return
			}
			records <- [2]uint32{binary.NativeEndian.Uint32(b[:4]), binary.NativeEndian.Uint32(b[4:])}
		}
	}()
	// Whatever happens next, the intermediate is gone (so the program's
	// parent is init) and its records read before the result is sent.
	programPid := 0
	execSeen, treeGone := false, false
	var execRec uint32
	r := &Result{}
	handle := func(rec [2]uint32) {
		switch rec[0] {
		case child.RecSubreaper:
			if rec[1] != 0 {
				r.SubreaperErr = syscall.Errno(rec[1]).Error()
			}
		case child.RecPid:
			programPid = int(rec[1])
			if progress != nil {
				progress(programPid)
			}
		case child.RecExec:
			execRec, execSeen = rec[1], true
		case child.RecWait:
			ws := syscall.WaitStatus(rec[1])
			r.Wait, r.ExitTime = &ws, time.Now()
		}
	}
	// next waits for the next record until deadline; false when the
	// deadline came first or the records ended (treeGone).
	next := func(deadline <-chan time.Time) bool {
		select {
		case rec, ok := <-records:
			if !ok {
				treeGone = true
				return false
			}
			handle(rec)
			return true
		case <-deadline:
			return false
		}
	}
	defer func() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
				break
			}
		}
		for range records {
		}
	}()

	// The success window: stop early when the whole tree is gone, or
	// when the caller says the program is ready (or not: AwaitReady).
	window := time.NewTimer(job.Window)
	defer window.Stop()
	ready := false
windowLoop:
	for {
		select {
		case rec, ok := <-records:
			if !ok {
				treeGone = true
				break windowLoop
			}
			handle(rec)
		case <-window.C:
			break windowLoop
		case v := <-end:
			ready = v == 1
			break windowLoop
		}
	}
	// The window is over; the program's exec may not be (on a starved
	// machine, or with a window of a few milliseconds): its record is
	// waited for, bounded. Before it, the process is still the launcher's
	// copy, not the program.
	if !execSeen && !treeGone {
		settle := time.NewTimer(settleWait)
		for !execSeen && next(settle.C) {
		}
		settle.Stop()
	}
	r.Elapsed = time.Since(launched)
	failed := func(o Outcome) *Result {
		r.Outcome = o
		r.Stderr, _ = logfile.Tail(job.Stderr, errOffset, stderrLines, stderrBytes)
		return r
	}
	if !execSeen {
		if treeGone {
			return &Result{Outcome: Failed, Stage: StageSetup,
				Err: "the launcher's intermediate process ended before starting the program"}
		}
		// Nothing half-started is left: the program's process, still
		// before its exec, is killed with its intermediate.
		if programPid > 0 {
			syscall.Kill(programPid, syscall.SIGKILL)
		}
		return &Result{Outcome: Failed, Stage: StageExec, Errno: syscall.ETIMEDOUT,
			Err: fmt.Sprintf("the program's process had not finished its exec %v after success_seconds ended: killed", settleWait)}
	}
	if res := job.setupResult(execRec); res != nil {
		res.SubreaperErr = r.SubreaperErr
		return res
	}

	if !treeGone {
		// End of the window: the live descendants of the intermediate,
		// read by following the children files from it (its cost is the
		// tree's, not the machine's: 200 parallel starts do not each read
		// every process), until two reads agree.
		uid := os.Getuid()
		snap, err := settledTree(pid, uid, settleWait)
		if err != nil {
			// What runs is unknown (a partial tree would pass live
			// processes for gone): leave it be, and report. It has
			// exec'd (its record came): it is the program, not a copy of
			// the launcher.
			return &Result{Outcome: Failed, Err: "reading /proc at the end of success_seconds: " + err.Error(), Errno: errnoOf(err)}
		}
		var tree, matches []*proc.Process
		for _, p := range snap.Descendants(pid) {
			if p.Zombie() {
				continue
			}
			tree = append(tree, p)
			if p.UID == uid && re.MatchString(p.Title) && !sameArgs(p.Args, job.ShellArgv) {
				matches = append(matches, p)
			}
		}
		if job.AwaitReady && !ready && len(tree) > 0 {
			// Not ready in time: nothing half-started is left behind.
			for _, p := range tree {
				r.Seen = append(r.Seen, p.Brief())
			}
			stopTree(tree, job.TermToKill)
			return failed(NotReady)
		}
		roots := proc.Roots(matches)
		if len(roots) > 0 {
			chosen := roots[0]
			exe, _ := proc.Default().Exe(chosen.PID)
			r = &Result{Outcome: Started, SubreaperErr: r.SubreaperErr, Process: &Process{PID: chosen.PID, StartTicks: chosen.StartTicks,
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
		if len(tree) > 0 {
			for _, p := range tree {
				r.Seen = append(r.Seen, p.Brief())
			}
			// What runs under another title would be launched again by the
			// next start and pile up: stop what this start launched.
			stopTree(tree, job.TermToKill)
			return failed(NoMatch)
		}
		// Nothing left: the program exited, maybe right at the end of
		// the window. Its intermediate tells how, as it ends (bounded).
		settle := time.NewTimer(settleWait)
		for next(settle.C) {
		}
		settle.Stop()
	}
	if len(job.ShellArgv) > 0 && r.Wait != nil && r.Wait.Exited() &&
		(r.Wait.ExitStatus() == 126 || r.Wait.ExitStatus() == 127) {
		return failed(ShellFailed)
	}
	return failed(Exited)
}

// setupResult is the failure told by an exec record, nil when the program
// runs.
func (job *Job) setupResult(rec uint32) *Result {
	if rec == 0 {
		return nil
	}
	step, detail, errno := child.Step(rec)
	switch step {
	case child.StepChdir:
		return &Result{Outcome: SetupFailed, Stage: StageChdir, Errno: errno,
			Err: fmt.Sprintf("cannot enter directory %s: %v", job.Dir, errno)}
	case child.StepLimit:
		name := limitName(detail)
		var want Limit
		for _, l := range job.Limits {
			if l.Resource == detail {
				want = l
			}
		}
		msg := fmt.Sprintf("cannot set %s to soft %s, hard %s: %v", name, rlimitString(want.Soft), rlimitString(want.Hard), errno)
		var now syscall.Rlimit
		if syscall.Getrlimit(detail, &now) == nil && (want.Hard > now.Max || want.Soft > now.Max) {
			msg += fmt.Sprintf(" (above the hard limit %s, which only a privileged process can raise)", rlimitString(now.Max))
		} else if want.Soft > want.Hard {
			msg += " (the soft limit is above the hard one)"
		}
		return &Result{Outcome: SetupFailed, Stage: StageLimit, Errno: errno, Err: msg}
	case child.StepFork:
		return &Result{Outcome: Failed, Stage: StageFork, Errno: errno,
			Err: "forking the program's process: " + errno.Error()}
	case child.StepSetup:
		return &Result{Outcome: Failed, Stage: StageSetup, Errno: errno,
			Err: "setting up the program's intermediate process: " + errno.Error()}
	}
	return &Result{Outcome: ExecFailed, Stage: StageExec, Errno: errno, Err: errno.Error()}
}

// rlimitString writes a limit as ulimit does.
func rlimitString(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// settleWait bounds how long the end of a window waits for the program's
// exec to complete, and for its tree to read the same twice (see
// settledTree).
const settleWait = 2 * time.Second

// readTree reads the descendants of a process; a variable for tests.
var readTree = func(pid, uid int) (*proc.Snapshot, error) { return proc.Default().Tree(pid, uid) }

// settledTree reads the live descendants of self at the end of the window,
// until two consecutive reads agree (the same processes, with the same
// start times and titles, none without a command line), bounded by wait:
// a process forked while the tree was walked, or one in the middle of an
// exec (its command line is its parent's, or empty while the new one is
// built), cannot escape the reading. After wait, the last read counts.
func settledTree(self, uid int, wait time.Duration) (*proc.Snapshot, error) {
	deadline := time.Now().Add(wait)
	prev, err := readTree(self, uid)
	for err == nil {
		var snap *proc.Snapshot
		if snap, err = readTree(self, uid); err != nil {
			break
		}
		if sameTree(prev, snap, self) || time.Now().After(deadline) {
			return snap, nil
		}
		prev = snap
		time.Sleep(5 * time.Millisecond)
	}
	return nil, err
}

// sameTree reports whether a and b show the same live descendants of self,
// each with a command line.
func sameTree(a, b *proc.Snapshot, self int) bool {
	da, db := a.Descendants(self), b.Descendants(self)
	if len(da) != len(db) {
		return false
	}
	for i, p := range da {
		q := db[i]
		if p.PID != q.PID || p.StartTicks != q.StartTicks || p.Title != q.Title || p.Zombie() != q.Zombie() ||
			(!p.Zombie() && p.Title == "") {
			return false
		}
	}
	return true
}

// stopTree stops the processes a failed start launched: SIGTERM, then
// SIGKILL after grace (at most 10 s). Their intermediate reaps them. A pid
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
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if signal(0) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	signal(syscall.SIGKILL)
}

func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
}

// sameArgs reports whether a is the argv b (not empty).
func sameArgs(a, b []string) bool { return len(b) > 0 && slices.Equal(a, b) }

// errnoOf returns the errno err wraps, 0 when none.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	errors.As(err, &errno)
	return errno
}

// ends are the windows a caller may end early, by job id (AwaitReady).
var ends = &endRegistry{chans: map[uint32]chan byte{}}

type endRegistry struct {
	sync.Mutex
	chans map[uint32]chan byte
}

// open registers job id's window and returns the channel its end comes on.
func (r *endRegistry) open(id uint32) chan byte {
	r.Lock()
	defer r.Unlock()
	ch := make(chan byte, 1)
	r.chans[id] = ch
	return ch
}

// end delivers the caller's verdict for job id, if its window is open.
func (r *endRegistry) end(id uint32, verdict byte) {
	r.Lock()
	defer r.Unlock()
	if ch, ok := r.chans[id]; ok {
		select {
		case ch <- verdict:
		default:
		}
	}
}

// close forgets job id's window.
func (r *endRegistry) close(id uint32) {
	r.Lock()
	defer r.Unlock()
	delete(r.chans, id)
}
