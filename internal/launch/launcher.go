package launch

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/atomicfile"
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
func Main() int {
	var st syscall.Stat_t
	if err := syscall.Fstat(connFd, &st); err != nil {
		fmt.Fprintln(os.Stderr, "usrsvc launcher: started without its socket")
		return 2
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		// A caller of an older build sends its job on a pipe and reads its
		// result, in JSON, on fd 4.
		out, _ := json.Marshal(&Result{Outcome: Failed, Err: "the launcher is of a newer build than its caller " +
			"(it takes its jobs on a socket): start the program with a usrsvc of the same build"})
		syscall.Write(4, out)
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
		var job Job
		switch {
		case err != nil:
		case flags&syscall.MSG_TRUNC != 0:
			err = fmt.Errorf("the job is larger than %d bytes", maxMessage)
		case len(data) == 0 || data[0] != jobMagic:
			err = errCodec
		default:
			err = decodeJob(data, &job)
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
				r = job.run()
			}
			msg := binary.LittleEndian.AppendUint32(make([]byte, 0, 256), id)
			// The caller may have stopped waiting: nothing else to do.
			syscall.Sendmsg(connFd, append(msg, encodeResult(r)...), nil, nil, syscall.MSG_NOSIGNAL)
			if lock != nil {
				lock.Close() // the program is recorded
			}
		}()
	}
	wg.Wait()
	return 0
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
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading the job's file: %w", err)
	}
	return data, nil
}

// The launcher's own facts, set by Main.
var (
	launcherPid uintptr
	nofile      *[2]uint64
)

func (job *Job) run() *Result {
	re, err := regexp.Compile(job.TitleRE)
	if err != nil {
		return &Result{Outcome: Failed, Err: "proctitle_re: " + err.Error()}
	}
	s := &start{launcher: launcherPid, nofile: nofile, allSignals: ^uint64(0)}
	if s.path, err = syscall.BytePtrFromString(job.Path); err == nil {
		if s.argv, err = syscall.SlicePtrFromStrings(job.Argv); err == nil {
			s.envv, err = syscall.SlicePtrFromStrings(job.Env)
		}
	}
	if err == nil && job.Dir != "" {
		s.dir, err = syscall.BytePtrFromString(job.Dir)
	}
	if err != nil || len(job.Argv) == 0 {
		return &Result{Outcome: ExecFailed, Err: syscall.EINVAL.Error(), Errno: syscall.EINVAL}
	}

	// Its files: stdio, and the two pipes of the intermediate.
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
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
	s.fds = [childFds]int{int(devnull.Fd()), int(out.Fd()), int(errf.Fd()), int(repW.Fd()), int(execW.Fd()), int(execR.Fd())}

	launched := time.Now()
	pid, err := forkIntermediate(s)
	runtime.KeepAlive(s)
	for _, f := range files {
		f.Close()
	}
	files = nil
	if err != nil {
		return &Result{Outcome: ExecFailed, Err: err.Error(), Errno: errnoOf(err)}
	}

	// The intermediate's records, until it exits (EOF).
	records := make(chan [2]uint32, 4)
	go func() {
		defer close(records)
		var b [recSize]byte
		for {
			if _, err := io.ReadFull(repR, b[:]); err != nil {
				return
			}
			records <- [2]uint32{binary.NativeEndian.Uint32(b[:4]), binary.NativeEndian.Uint32(b[4:])}
		}
	}()
	// Whatever happens next, the intermediate is gone (so the program's
	// parent is init) and its records read before the result is sent.
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
		s.release()
		runtime.KeepAlive(s)
	}()

	// The success window: stop early when the whole tree is gone.
	r := &Result{}
	var execErr syscall.Errno
	execSeen := false
	deadline := time.NewTimer(job.Window)
	defer deadline.Stop()
	treeGone := false
wait:
	for {
		select {
		case rec, ok := <-records:
			if !ok {
				treeGone = true
				break wait
			}
			switch rec[0] {
			case recSubreaper:
				if rec[1] != 0 {
					r.SubreaperErr = syscall.Errno(rec[1]).Error()
				}
			case recExec:
				execErr, execSeen = syscall.Errno(rec[1]), true
			case recWait:
				ws := syscall.WaitStatus(rec[1])
				r.Wait, r.ExitTime = &ws, time.Now()
			}
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
	if treeGone && !execSeen {
		return &Result{Outcome: Failed, Err: "the launcher's intermediate process ended before starting the program"}
	}
	if execErr != 0 {
		return &Result{Outcome: ExecFailed, Err: execErr.Error(), Errno: execErr, SubreaperErr: r.SubreaperErr}
	}

	if treeGone {
		if len(job.ShellArgv) > 0 && r.Wait != nil && r.Wait.Exited() &&
			(r.Wait.ExitStatus() == 126 || r.Wait.ExitStatus() == 127) {
			return failed(ShellFailed)
		}
		return failed(Exited)
	}

	// End of the window: the live descendants of the intermediate, read by
	// following the children files from it (its cost is the tree's, not
	// the machine's: 200 parallel starts do not each read every process).
	uid := os.Getuid()
	snap, err := settledTree(pid, uid, settleWait)
	if err != nil {
		// What runs is unknown (a partial tree would pass live processes
		// for gone): leave it be, and report.
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
