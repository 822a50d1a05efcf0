// Package launch is usrsvc's launcher: the process that starts programs
// detached, so that a program's parent is init (or the session's
// subreaper), never its caller.
//
// The caller ([Spawn]) re-executes a binary that imports package usrsvc —
// normally itself, through /proc/self/exe — with [EnvMarker] set. This
// package's init sees the marker and runs [Main] before the binary's main,
// as soon as the few packages it needs are initialised: the launcher does
// not pay for initialising the rest of the binary (the usrsvc package's
// regexps, the net and shell-parser packages, an embedder's own). Its
// runtime is set for a short life ([launcherRuntimeEnv]).
//
// Starts under way at the same moment share a launcher: each [Job] is
// sent, with the program's lock, over a socket the launcher inherited
// (never in its argv: its own title must not match a proctitle_re). For
// each job the launcher starts an intermediate process of its own (see
// fork.go): the subreaper of that program's tree, which starts the program
// in a new session and reaps what comes back to it. At the end of the
// window the launcher reads that tree, writes the pidfile, ends the
// intermediate (the program's parent becomes init), answers a typed
// [Result], and only then lets the lock go, so a caller killed during the
// window never leaves an unrecorded program. The launcher exits when its
// caller has closed the socket and its jobs are done.
package launch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EnvMarker marks a process as a usrsvc launcher ("USRSVC_LAUNCHER=1").
const EnvMarker = "USRSVC_LAUNCHER"

// IsLauncher reports whether this process was started as a launcher.
func IsLauncher() bool { return os.Getenv(EnvMarker) == "1" }

// connFd is the launcher's end of the socket it shares with its caller:
// jobs come in (a program's lock with each), results go out.
const connFd = 3

// maxMessage bounds a job or a result on the socket.
const maxMessage = 1 << 20

// maxJobs is how many jobs one launcher takes: beyond, a new launcher is
// started, so that a large start-all runs on more than one core.
const maxJobs = 64

// jobsPerLauncher is maxJobs, or fewer when the hard limit on open files
// (which the launcher's runtime raises its soft limit to) is low: a job
// holds about 8 files in the launcher while its program starts.
var jobsPerLauncher = sync.OnceValue(func() int {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Max >= 20+8*maxJobs {
		return maxJobs
	}
	return max(1, (int(lim.Max)-20)/8)
})

// launcherRuntimeEnv tunes the Go runtime of the launcher, a process that
// lives one success window and does little: one P (no GC workers or idle
// Ps to start), no garbage collection below 64 MiB of heap (it allocates a
// few hundred kB), and no heap profile sampling (its first sample unwinds a
// stack). Measured with bench/ab.sh, 100-200 parallel starts: about 10 %
// less CPU per start. The program never sees these variables: its
// environment is the job's.
var launcherRuntimeEnv = []string{"GOMAXPROCS=1", "GOGC=off", "GOMEMLIMIT=64MiB", "GODEBUG=memprofilerate=0"}

// Stripped lists the environment variables that never reach a program:
// the launcher's marker and systemd's per-service variables, which
// describe usrsvcd's unit, not the program.
var Stripped = []string{EnvMarker, "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS",
	"LISTEN_FDNAMES", "WATCHDOG_PID", "WATCHDOG_USEC"}

// IsStripped reports whether the variable named key is in [Stripped].
func IsStripped(key string) bool { return slices.Contains(Stripped, key) }

// CleanEnv returns env without the [Stripped] variables and without the
// extra ones; env is not modified.
func CleanEnv(env []string, extra ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if IsStripped(k) || slices.Contains(extra, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Job is what the caller sends the launcher.
type Job struct {
	// Probe asks only for a [Probed] result: the binary can serve as the
	// launcher. Nothing is started.
	Probe bool

	Path    string   // the resolved executable
	Argv    []string // argv of the program (or of its shell)
	Env     []string // the program's whole environment
	Dir     string   // its working directory
	Stdout  string   // appended to
	Stderr  string   // appended to; may equal Stdout
	Window  time.Duration
	Pidfile string // written on success when AutoPid
	AutoPid bool
	TitleRE string // proctitle_re, Go regexp syntax
	// ShellArgv is, for a useshell program, the shell's own argv: the
	// shell is never a match.
	ShellArgv []string
	// TermToKill is the SIGTERM → SIGKILL grace used to stop a tree in
	// which nothing matched (at most 10 s).
	TermToKill time.Duration
	// Umask, when SetUmask, is the program's umask; otherwise it keeps its
	// caller's.
	SetUmask bool
	Umask    uint32
	// Limits are set in the program's process before its exec, in order;
	// one that cannot be set fails the start (SetupFailed, Stage
	// StageLimit). At most 8.
	Limits []Limit
	// AwaitReady makes the window end when the caller says the program is
	// ready (see [SpawnUntil]); Window is then the readiness timeout, and a
	// window that ends without it (or with the caller's "not ready") is a
	// NotReady start: what runs is stopped.
	AwaitReady bool
}

// Outcome says how a launch ended.
type Outcome string

// The outcomes of a launch.
const (
	// Started: a process matching TitleRE runs at the end of the window.
	Started Outcome = "started"
	// ExecFailed: the program could not be executed (Errno says why).
	ExecFailed Outcome = "exec-failed"
	// ShellFailed: the useshell shell exited 126 or 127 during the window
	// (the command is not executable or not found).
	ShellFailed Outcome = "shell-failed"
	// Exited: the program and every descendant ended during the window.
	Exited Outcome = "exited"
	// NoMatch: something runs but nothing matches TitleRE; what ran was
	// stopped (Seen lists it).
	NoMatch Outcome = "no-match"
	// FilesFailed: stdout or stderr could not be opened (Err says why).
	FilesFailed Outcome = "files-failed"
	// SetupFailed: the program's process could not be set up before its
	// exec (Stage says which step: StageChdir, StageLimit; Err words it).
	SetupFailed Outcome = "setup-failed"
	// Failed: the launcher itself failed (a bad job, /proc unreadable, out
	// of processes: Stage StageFork with Errno EAGAIN).
	Failed Outcome = "failed"
	// Probed answers a probe job.
	Probed Outcome = "probed"
	// NotReady: with AwaitReady, the window ended without the program
	// being ready; what ran was stopped (Seen lists it).
	NotReady Outcome = "not-ready"
)

// Stage is the step of a start that failed.
type Stage string

// The steps of a start.
const (
	StageExec  Stage = "exec"   // the program's execve
	StageChdir Stage = "chdir"  // entering its working directory
	StageLimit Stage = "rlimit" // setting one of its resource limits
	StageFork  Stage = "fork"   // forking its intermediate or its process
	StageSetup Stage = "setup"  // the intermediate's own set-up (its fds)
)

// Result is what the launcher reports: typed facts, not messages (the
// caller words them).
type Result struct {
	Outcome Outcome
	// Err is the error text for ExecFailed, FilesFailed and Failed.
	Err string
	// Errno is the errno of ExecFailed and SetupFailed, and of FilesFailed
	// and Failed when a system call failed (EMFILE, ENOSPC, EAGAIN, ...
	// tell a resource ran out).
	Errno syscall.Errno
	// Stage is the step that failed (ExecFailed, SetupFailed, Failed).
	Stage Stage
	// Process is the matched process (Started).
	Process *Process
	// Wait is the wait status of the launched process when it ended during
	// the window, at ExitTime.
	Wait     *syscall.WaitStatus
	ExitTime time.Time
	// Elapsed is the time from the launch to the end of the tree (Exited).
	Elapsed time.Duration
	// Stderr is what the stderr file gained since the launch, last lines
	// (on failure).
	Stderr []string
	// Seen lists the live descendants ("[PID] title") when nothing matched.
	Seen []string
	// OtherRoots lists the other matching roots ("[PID] title") when
	// several matched: the oldest was chosen.
	OtherRoots []string
	// PidfileErr is why the pidfile could not be written (Started).
	PidfileErr string
	// SubreaperErr is why the program's intermediate could not become the
	// child subreaper of its tree (then a fork-and-exit program looks
	// exited).
	SubreaperErr string
	// Note tells something worth showing with the outcome: e.g. that the
	// launcher died during the window and the caller checked the program
	// itself.
	Note string
}

// Process is the matched process, as read at the end of the window.
type Process struct {
	PID        int
	StartTicks uint64
	Started    time.Time
	Executable string
	Title      string
	Args       []string
}

// ErrStart is wrapped by Spawn's error when the launcher cannot be started
// at all (the binary is missing or not executable).
var ErrStart = errors.New("cannot start the launcher")

// ErrNoAnswer is wrapped by Spawn's error when the launcher did not answer
// within the bound of its job (see [Spawn]).
var ErrNoAnswer = errors.New("the launcher did not answer")

// The messages of a launcher to its caller: a job id (4 bytes), then one of
// these bytes (and what follows it), or a result (resultMagic).
const (
	msgAck       = 0xA4 // the job was taken
	msgProgress  = 0xA5 // a uvarint: the pid of the program's process, forked
	resultInFile = 0xA6 // the result is in the fd passed with the message
	// msgEnd, from the caller: end the job's window now; a byte follows,
	// 1 when the program is ready, 0 when it is not (AwaitReady).
	msgEnd = 0xA7
)

// joinWindow is how long after its first job a launcher takes more: the
// starts of one burst (a start all, a crash of many) share a launcher, and
// a later start never waits on a launcher that may have stalled since. A
// variable for tests.
var joinWindow = 30 * time.Millisecond

// maxBatchBytes bounds the jobs of one launcher by their size too (a job
// carries its program's environment, up to 2 MB).
const maxBatchBytes = 16 << 20

// answerMargin is added to the time a job may take in its launcher (its
// window, its stop grace, its settle waits) to bound the wait for its
// result; a variable for tests.
var answerMargin = 30 * time.Second

// answerBound is how long Spawn waits for the result of job.
func answerBound(job *Job) time.Duration {
	return job.Window + min(max(job.TermToKill, 0), 10*time.Second) + 3*settleWait + answerMargin
}

// abandoned are launchers left running jobs whose callers stopped
// waiting: they finish on their own and are reaped, without a goroutine,
// by the next Spawn or Reap.
var abandoned struct {
	sync.Mutex
	batches []*batch
}

// Reap reaps the abandoned launchers that have exited, without waiting.
func Reap() {
	abandoned.Lock()
	defer abandoned.Unlock()
	live := abandoned.batches[:0]
	for _, b := range abandoned.batches {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(b.cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
		if pid == 0 && err == nil {
			live = append(live, b)
			continue
		}
		b.cmd.Process.Release()
		b.stderr.Close()
	}
	abandoned.batches = live
}

// A batch is one launcher process and the jobs sent to it. Concurrent
// Spawns share a launcher: the first starts it (or takes the one kept
// ready, see [KeepReady]), the next ones send their jobs on its socket for
// joinWindow, up to maxJobs and maxBatchBytes; the last one to leave
// closes the socket, and the launcher exits once its jobs are done. So
// starting 200 programs at once costs a few Go processes, not 200.
type batch struct {
	exe        string
	cmd        *exec.Cmd
	conn       *os.File // the caller's end of the socket, in Go's netpoller
	rc         syscall.RawConn
	stderr     *os.File // the launcher's stderr (non-blocking), read when it ends
	readerDone chan struct{}
	reapOnce   sync.Once
	stderrText string // what the launcher wrote on its stderr, once reaped

	// guarded by batches
	firstJob  time.Time          // when the first job was sent
	sent      int                // jobs sent
	bytes     int                // their size
	members   int                // Spawns that joined and have not left
	waiting   map[uint32]*waiter // results awaited, by job id
	abandoned int                // results no longer awaited, not yet in
	answered  bool               // the launcher sent something: it is one
	dead      bool               // the launcher closed its end
	closed    bool               // the caller closed its end
}

// waiter is a job awaiting its result.
type waiter struct {
	ch    chan []byte // the result; closed when the launcher ended without
	acked bool        // the launcher took the job
	pid   int         // the program's process, once forked
}

// launchersStarted counts the launcher processes started.
var launchersStarted atomic.Int64

// LaunchersStarted returns how many launcher processes this process has
// started so far.
func LaunchersStarted() int64 { return launchersStarted.Load() }

var batches struct {
	sync.Mutex
	open   map[string]*batch // the batch taking jobs, by launcher path
	nextID uint32
}

// Spawn has exe, as a launcher, run job and waits for its result. lock
// (may be nil) is passed to the launcher, which holds it until the program
// is recorded.
//
// When ctx is done first, Spawn returns ctx's error (wrapped) at once: the
// launcher finishes the start by itself, and is reaped later (see
// [Reap]). When the launcher does not answer within the job's bound (its
// window, stop grace and settle waits, plus a margin: a stopped or starved
// launcher), Spawn returns an error wrapping [ErrNoAnswer]; that launcher
// still holds the lock, and may finish the start later.
//
// When the launcher ends without answering (it was killed), a job it had
// not taken is given to a new launcher; for a job it had taken, Spawn
// checks the program itself at the end of its window: a process of the
// account matching TitleRE is the program (recorded in the pidfile with
// AutoPid, outcome Started); otherwise what runs in the session of the
// program's process is stopped (NoMatch). Either way Result.Note says
// that the launcher died.
//
// Spawn leaves no goroutine of its own behind when no other Spawn runs.
func Spawn(ctx context.Context, exe string, job *Job, lock *os.File) (*Result, error) {
	return SpawnUntil(ctx, exe, job, lock, nil)
}

// SpawnUntil is [Spawn] for a job with AwaitReady: the first value end
// delivers ends the job's window — true when the program is ready (the
// launcher then reads what runs and records it), false when it is not
// (what runs is stopped: NotReady).
func SpawnUntil(ctx context.Context, exe string, job *Job, lock *os.File, end <-chan bool) (*Result, error) {
	Reap()
	payload := encodeJob(job)
	var lastErr error
	for range 3 {
		b, id, w, err := join(exe, len(payload))
		if err != nil {
			return nil, err
		}
		sent := time.Now()
		if err := b.send(id, payload, lock); err != nil {
			b.leave(id, false)
			var gone *goneError
			if errors.As(err, &gone) {
				lastErr = err
				continue // a launcher that died: another one
			}
			return nil, err
		}
		res, retry, err := b.await(ctx, id, w, job, sent, end)
		if !retry {
			return res, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// await waits for the result of job id on b. retry says that the launcher
// ended without taking the job: it is for another launcher.
func (b *batch) await(ctx context.Context, id uint32, w *waiter, job *Job, sent time.Time, end <-chan bool) (*Result, bool, error) {
	bound := answerBound(job)
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		select {
		case ready := <-end:
			end = nil // asked once
			verdict := byte(0)
			if ready {
				verdict = 1
			}
			b.sendEnd(id, verdict)
			continue
		case data, ok := <-w.ch:
			if ok {
				b.leave(id, false)
				var res Result
				if err := decodeResult(data, &res); err != nil {
					return nil, false, fmt.Errorf("decoding the launcher's result: %w", err)
				}
				return &res, false, nil
			}
			batches.Lock()
			acked, pid, answered := w.acked, w.pid, b.answered
			batches.Unlock()
			b.leave(id, false)
			died := b.endError()
			if !acked {
				if !answered && !b.signaled() && !errors.Is(died, syscall.EAGAIN) {
					return nil, false, fmt.Errorf("the launcher %s %w without taking the job (a launcher is a binary that imports package usrsvc)", b.exe, died)
				}
				return nil, true, fmt.Errorf("the launcher %w before taking the job", died)
			}
			res, err := recoverStart(ctx, job, pid, sent, fmt.Sprintf("the launcher %v during the start", died), died)
			return res, false, err
		case <-timer.C:
			b.leave(id, true)
			return nil, false, fmt.Errorf("%w within %v: launcher [%d] is stopped or starved; it holds the program's lock until it answers or ends",
				ErrNoAnswer, bound, b.cmd.Process.Pid)
		case <-ctx.Done():
			b.leave(id, true)
			// The launcher goes on by itself: it holds the lock and records
			// the program, so abandoning it leaves nothing half-done.
			return nil, false, fmt.Errorf("abandoned while the launcher runs: %w", context.Cause(ctx))
		}
	}
}

// join returns the batch taking jobs for exe, starting one if needed, with
// a new job id and its waiter.
func join(exe string, size int) (*batch, uint32, *waiter, error) {
	batches.Lock()
	defer batches.Unlock()
	b := batches.open[exe]
	if b == nil || !b.joinable(size) {
		if b = takeReady(exe); b == nil {
			var err error
			if b, err = startBatch(exe); err != nil {
				return nil, 0, nil, err
			}
		}
		if batches.open == nil {
			batches.open = make(map[string]*batch)
		}
		batches.open[exe] = b
	}
	batches.nextID++
	id := batches.nextID
	w := &waiter{ch: make(chan []byte, 1)}
	b.waiting[id] = w
	if b.sent == 0 {
		b.firstJob = time.Now()
	}
	b.sent++
	b.bytes += size
	b.members++
	return b, id, w, nil
}

// joinable reports whether b takes a job of size more. Called with
// batches locked.
func (b *batch) joinable(size int) bool {
	return !b.dead && !b.closed && b.sent < jobsPerLauncher() && b.bytes+size <= maxBatchBytes &&
		(b.sent == 0 || time.Since(b.firstJob) < joinWindow)
}

// startBatch starts a launcher.
func startBatch(exe string) (*batch, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("launcher socket: %w", os.NewSyscallError("socketpair", err))
	}
	// A job carries its program's whole environment: room for large ones
	// (the kernel caps this at its wmem_max; larger ones go in a file).
	syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, maxMessage)
	syscall.SetsockoptInt(fds[1], syscall.SOL_SOCKET, syscall.SO_SNDBUF, maxMessage)
	theirs := os.NewFile(uintptr(fds[1]), "launcher socket")
	defer theirs.Close()
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		return nil, fmt.Errorf("launcher socket: %w", os.NewSyscallError("fcntl", err))
	}
	conn := os.NewFile(uintptr(fds[0]), "launcher socket")
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("launcher socket: %w", err)
	}
	// Its stderr: a pipe read when it ends without answering. Non-blocking
	// at both ends: a launcher never blocks writing to it.
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		conn.Close()
		return nil, fmt.Errorf("launcher stderr: %w", os.NewSyscallError("pipe2", err))
	}
	errR, errW := os.NewFile(uintptr(p[0]), "launcher stderr"), os.NewFile(uintptr(p[1]), "launcher stderr")
	defer errW.Close()
	cmd := exec.Command(exe)
	cmd.Args = []string{"usrsvc-launcher"}
	cmd.Env = append([]string{EnvMarker + "=1"}, launcherRuntimeEnv...)
	cmd.Dir = "/"
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		conn.Close()
		errR.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrStart, exe, err)
	}
	launchersStarted.Add(1)
	b := &batch{exe: exe, cmd: cmd, conn: conn, rc: rc, stderr: errR, readerDone: make(chan struct{}),
		waiting: make(map[uint32]*waiter)}
	go b.read()
	return b, nil
}

// send sends job id to the launcher, with lock.
func (b *batch) send(id uint32, payload []byte, lock *os.File) error {
	msg := binary.LittleEndian.AppendUint32(make([]byte, 0, 5+len(payload)), id)
	var fds []int
	if lock != nil {
		fds = append(fds, int(lock.Fd()))
	}
	if len(payload) <= maxInline {
		msg = append(msg, payload...)
	} else {
		// A large environment: the job goes in a memory file, whose fd
		// follows the lock's.
		job, err := jobFile(payload)
		if err != nil {
			return err
		}
		defer job.Close()
		msg = append(msg, jobInFile)
		fds = append(fds, int(job.Fd()))
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	var serr error
	err := b.rc.Write(func(fd uintptr) bool {
		serr = syscall.Sendmsg(int(fd), msg, oob, nil, syscall.MSG_NOSIGNAL)
		return serr != syscall.EAGAIN
	})
	if lock != nil {
		runtime.KeepAlive(lock)
	}
	if err == nil {
		err = serr
	}
	if err != nil {
		if errors.Is(err, syscall.EMSGSIZE) {
			return fmt.Errorf("the launch job is too large (%d bytes) for the launcher's socket: is the environment that large?", len(msg))
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			<-b.readerDone // it ended: its exit is known
			batches.Lock()
			answered := b.answered
			batches.Unlock()
			end := b.endError()
			if answered || b.signaled() {
				return &goneError{fmt.Errorf("the launcher %w before taking the job", end)}
			}
			if errors.Is(end, syscall.EAGAIN) {
				return fmt.Errorf("the launcher %w before taking the job", end)
			}
			return fmt.Errorf("the launcher %s %w without taking the job (a launcher is a binary that imports package usrsvc)",
				b.exe, end)
		}
		return fmt.Errorf("sending the job to the launcher: %w", os.NewSyscallError("sendmsg", err))
	}
	return nil
}

// maxInline bounds a job or a result sent inline on the socket; a larger
// one (a large environment: up to the kernel's 2 MB for arguments and
// environment; a result with a long command line) is passed as a memory
// file, since a socket's message is bounded by its buffer
// (net.core.wmem_max, often 208 kB).
const maxInline = 64 << 10

// jobInFile, in place of a job's magic byte, says that the job is in the
// last fd passed with the message.
const jobInFile = 0xA3

// maxResultFile bounds a result read from a file.
const maxResultFile = 64 << 20

// jobFile returns a memory file holding payload, at offset 0.
func jobFile(payload []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("usrsvc-job", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("the launch job's file: %w", os.NewSyscallError("memfd_create", err))
	}
	f := os.NewFile(uintptr(fd), "usrsvc-job")
	if _, err := f.Write(payload); err != nil {
		f.Close()
		return nil, fmt.Errorf("the launch job's file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("the launch job's file: %w", err)
	}
	return f, nil
}

// read hands the launcher's messages to their Spawns until the socket
// ends.
func (b *batch) read() {
	defer close(b.readerDone)
	buf := make([]byte, 64<<10) // a message is small; a larger one grows it
	oob := make([]byte, syscall.CmsgSpace(4))
	ended := false
	for {
		var n, oobn int
		var rerr error
		err := b.rc.Read(func(fd uintptr) bool {
			// The length of the next message first (MSG_TRUNC tells it
			// whole), so that none is cut.
			if n, _, _, _, rerr = syscall.Recvmsg(int(fd), buf[:1], nil, syscall.MSG_PEEK|syscall.MSG_TRUNC); rerr != nil {
				return rerr != syscall.EAGAIN
			}
			if n > len(buf) {
				buf = make([]byte, n)
			}
			n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_CMSG_CLOEXEC)
			return rerr != syscall.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil || n == 0 {
			ended = err == nil || errors.Is(err, syscall.ECONNRESET)
			break
		}
		fds := receivedFds(oob[:oobn])
		if n < 5 {
			closeFds(fds)
			continue
		}
		id := binary.LittleEndian.Uint32(buf)
		var data []byte
		switch buf[4] {
		case msgAck, msgProgress:
		case resultInFile:
			if len(fds) == 1 {
				data, err = readResultFile(fds[0])
				fds = nil
			}
			if err != nil || data == nil {
				msg := "the launcher's result could not be read"
				if err != nil {
					msg += ": " + err.Error()
				}
				data = encodeResult(&Result{Outcome: Failed, Err: msg, Errno: errnoOf(err)})
			}
		default:
			data = append([]byte(nil), buf[4:n]...)
		}
		closeFds(fds)
		batches.Lock()
		b.answered = true
		if w, ok := b.waiting[id]; ok {
			switch {
			case buf[4] == msgAck:
				w.acked = true
			case buf[4] == msgProgress:
				if pid, k := binary.Uvarint(buf[5:n]); k > 0 {
					w.pid = int(pid)
				}
			default:
				delete(b.waiting, id)
				w.ch <- data
			}
		} else if data != nil && b.abandoned > 0 {
			b.abandoned--
		}
		batches.Unlock()
	}
	if ended {
		// The launcher ended (its socket is only closed by its exit):
		// reap it now, so that its end can be told.
		b.reap()
	}
	// Whoever still waits is told.
	batches.Lock()
	b.dead = true
	if batches.open[b.exe] == b {
		delete(batches.open, b.exe)
	}
	for id, w := range b.waiting {
		delete(b.waiting, id)
		close(w.ch)
	}
	batches.Unlock()
}

// readResultFile reads a result passed as a file (and closes it).
func readResultFile(fd int) ([]byte, error) {
	f := os.NewFile(uintptr(fd), "result")
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxResultFile))
	if err != nil {
		return nil, fmt.Errorf("reading the result's file: %w", err)
	}
	return data, nil
}

// reap waits for the launcher's exit (once), and reads what it wrote on its
// stderr.
func (b *batch) reap() {
	b.reapOnce.Do(func() {
		b.cmd.Wait()
		b.stderrText = b.stderrExcerpt()
	})
}

// signaled reports whether the reaped launcher was killed by a signal.
func (b *batch) signaled() bool {
	if st := b.cmd.ProcessState; st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled()
		}
	}
	return false
}

// goneError is a job that a launcher which ended did not take: it is for
// another launcher.
type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// endError says how the launcher ended ("exited (signal: killed)"), with
// what it wrote on its stderr.
func (b *batch) endError() error {
	b.reap()
	what := "ended"
	if b.cmd.ProcessState != nil {
		what = "exited (" + b.cmd.ProcessState.String() + ")"
	}
	text := b.stderrText
	var errno syscall.Errno
	if strings.Contains(text, "errno=11") || strings.Contains(strings.ToLower(text), "resource temporarily unavailable") {
		// The Go runtime of the launcher could not start a thread: out of
		// processes (RLIMIT_NPROC).
		errno = syscall.EAGAIN
	}
	if text != "" {
		what += ": " + text
	}
	return &EndError{Msg: what, Errno: errno}
}

// EndError says how a launcher ended without answering; it wraps the errno
// its own failure tells (EAGAIN when it could not start a thread).
type EndError struct {
	Msg   string
	Errno syscall.Errno
}

func (e *EndError) Error() string { return e.Msg }

// Unwrap returns the errno, if any.
func (e *EndError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// stderrExcerpt returns the start of what the launcher wrote on its stderr
// (bounded: its first lines tell why it failed), on one line.
func (b *batch) stderrExcerpt() string {
	buf := make([]byte, 2048)
	n, _ := syscall.Read(int(b.stderr.Fd()), buf)
	if n <= 0 {
		return ""
	}
	text := string(buf[:n])
	if head, _, ok := strings.Cut(text, "\n\n"); ok {
		// A Go runtime's fatal error: its message, not the goroutines.
		text = head
	}
	lines := strings.Fields(strings.ReplaceAll(text, "\n", " | "))
	return strings.TrimSuffix(strings.Join(lines, " "), " |")
}

// leave ends a Spawn's membership of b; the last member closes the
// socket, waits for the reader, and reaps the launcher (which exits at
// once when no job of its runs) or leaves it to Reap.
func (b *batch) leave(id uint32, abandon bool) {
	batches.Lock()
	if _, ok := b.waiting[id]; ok {
		delete(b.waiting, id)
		if abandon {
			b.abandoned++
		}
	}
	b.members--
	last := b.members == 0 && !b.closed
	if last {
		b.closed = true
		if batches.open[b.exe] == b {
			delete(batches.open, b.exe)
		}
	}
	batches.Unlock()
	if !last {
		return
	}
	b.close()
}

// close closes the caller's end of the socket: the launcher exits once its
// jobs are done; it is reaped now, or by Reap when jobs were abandoned.
func (b *batch) close() {
	b.conn.Close()
	<-b.readerDone
	batches.Lock()
	running := b.abandoned > 0
	batches.Unlock()
	if running {
		abandoned.Lock()
		abandoned.batches = append(abandoned.batches, b)
		abandoned.Unlock()
		return
	}
	b.reap()
	b.stderr.Close()
}

// sendEnd tells the launcher to end job id's window (a lost message only
// lets the window run to its end).
func (b *batch) sendEnd(id uint32, verdict byte) {
	msg := binary.LittleEndian.AppendUint32(make([]byte, 0, 6), id)
	msg = append(msg, msgEnd, verdict)
	b.rc.Write(func(fd uintptr) bool {
		err := syscall.Sendmsg(int(fd), msg, nil, nil, syscall.MSG_NOSIGNAL)
		return err != syscall.EAGAIN
	})
}
