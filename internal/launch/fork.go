package launch

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/startlimit"
)

// A launcher starts each program through an intermediate process of its
// own: a fork of the launcher, without exec, that runs only the system
// calls below. The intermediate becomes the child subreaper of the
// program's tree, forks and execs the program in a new session, reaps
// whatever comes back to it, reports on a pipe, and exits when the tree is
// gone. At the end of the window the launcher kills it, and the program's
// parent becomes init (or the session's subreaper). One launcher process
// (one Go runtime to start) thus serves many programs, while each program
// still has a subreaper of its own: the orphans of a fork-and-exit daemon
// come back to its intermediate and cannot be taken for another program's.
//
// Go cannot run Go code in a forked child (its other threads are gone, and
// the runtime may hold their locks), so the code the child runs is, like
// the standard library's own fork-and-exec, made of raw system calls only:
// no allocation, no stack growth (nosplit), no race or pointer checks.

// Records the intermediate writes on its report pipe: two native-endian
// uint32, a kind and a value.
const (
	recSubreaper = 1 // value: the errno of PR_SET_CHILD_SUBREAPER (0: done)
	recExec      = 2 // value: the errno of the program's chdir or exec (0: it runs)
	recWait      = 3 // value: the program's wait status, when it ended
	recSize      = 8
)

// The fds of the intermediate, set up before the program's fork: the
// program's stdio, then its own pipes (close-on-exec).
const (
	childReport = 3 // the report pipe's write end
	childExecW  = 4 // the exec pipe's write end: the program writes its exec errno
	childExecR  = 5 // the exec pipe's read end: EOF tells the exec worked
	childFds    = 6
)

// start is what the intermediate needs, prepared before the fork: the
// forked child may not allocate.
type start struct {
	path       *byte
	argv, envv []*byte       // nil-terminated
	dir        *byte         // nil: stay
	fds        [childFds]int // rewritten by the intermediate as it moves them
	launcher   uintptr       // the launcher's pid: the intermediate dies with it
	nofile     *[2]uint64    // the program's RLIMIT_NOFILE; nil leaves the launcher's
	sigdfl     [4]uint64     // a zeroed struct sigaction: SIG_DFL
	noSignals  uint64        // an empty signal set
	allSignals uint64        // a full signal set
	wstatus    uint32        // the intermediate's wait4 status
	rec        [2]uint32     // the intermediate's record being written
	execErr    uint32        // the program's exec errno, read by the intermediate
	stack      []byte        // the cloned processes' stacks (sharedMemoryClone)
	programPC  uintptr       // the program process's entry (sharedMemoryClone)
	shared     bool          // cloned with CLONE_VM (else forked)
}

// useSharedMemoryClone is sharedMemoryClone; tests turn it off to run the
// fork path on amd64 too.
var useSharedMemoryClone = sharedMemoryClone

// originalNofile returns the RLIMIT_NOFILE this launcher was started with
// when Go's runtime raised it since (and nobody changed it after), so that
// programs get their caller's limit, as syscall.ForkExec gives it.
func originalNofile() *[2]uint64 {
	if !startlimit.Known || startlimit.Max == 0 || startlimit.Cur >= startlimit.Max-1 {
		return nil
	}
	var now syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now) == nil &&
		(now.Cur != startlimit.Max-1 || now.Max != startlimit.Max) {
		return nil // changed since (by prlimit): leave it as it is
	}
	return &[2]uint64{startlimit.Cur, startlimit.Max}
}

// Stacks of the cloned processes (sharedMemoryClone): the intermediate's
// is the upper half of one mapping, the program's process's the lower half
// (it runs while the intermediate waits in its clone, so they never run
// on the same half). A few kB are used; untouched pages cost nothing.
const cloneStack = 64 << 10

// forkIntermediate starts the intermediate for s and returns its pid. The
// caller must keep s alive until the intermediate is reaped, then call
// s.release.
func forkIntermediate(s *start) (int, error) {
	if !useSharedMemoryClone {
		return forkIntermediateCopy(s)
	}
	// CLONE_VM: the intermediate shares the launcher's memory (no page
	// tables copied, no copy-on-write faults for the launcher after it),
	// on a stack of its own; the program's process shares it too until
	// its exec (CLONE_VFORK), as posix_spawn does.
	stack, err := syscall.Mmap(-1, 0, cloneStack, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return 0, err
	}
	s.stack = stack
	s.programPC = programPC
	s.shared = true
	top := uintptr(unsafe.Pointer(&stack[0])) + cloneStack
	// Every signal blocked on this thread while the child starts: it
	// inherits the mask, so no Go signal handler runs in it before it
	// sets them all to their defaults.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old uint64
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&s.allSignals)),
		uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	syscall.ForkLock.Lock()
	pid, errno := cloneIntermediate(unix.CLONE_VM|uintptr(syscall.SIGCHLD), top&^15, s)
	syscall.ForkLock.Unlock()
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
	if errno != 0 {
		s.release()
		s.shared = false
		if e := syscall.Errno(errno); e == syscall.EINVAL || e == syscall.ENOSYS || e == syscall.EPERM {
			// A sandbox that refuses this clone: a plain fork.
			return forkIntermediateCopy(s)
		}
		return 0, syscall.Errno(errno)
	}
	return int(pid), nil
}

// release frees what the intermediate used, once it is reaped.
func (s *start) release() {
	if s.stack != nil {
		syscall.Munmap(s.stack)
		s.stack = nil
	}
}

// forkIntermediateCopy starts the intermediate as a plain fork.
func forkIntermediateCopy(s *start) (int, error) {
	// The fork happens on one thread with every signal blocked, so that no
	// Go signal handler runs in the child before it resets them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	syscall.ForkLock.Lock()
	pid, errno := forkIntermediate1(s)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(s)
	if errno != 0 {
		return 0, errno
	}
	return pid, nil
}

//go:noinline
//go:nosplit
//go:norace
//go:nocheckptr
func forkIntermediate1(s *start) (int, syscall.Errno) {
	var old uint64
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&s.allSignals)),
		uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	pid, errno := rawFork()
	if errno != 0 || pid != 0 {
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
		return int(pid), errno
	}
	intermediate(s)
	return 0, 0 // not reached: intermediate exits
}

// rawFork is fork(2) through clone(2), which every architecture has.
//
//go:nosplit
//go:norace
//go:nocheckptr
func rawFork() (uintptr, syscall.Errno) {
	var pid uintptr
	var errno syscall.Errno
	if runtime.GOARCH == "s390x" { // its first two arguments are swapped
		pid, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, 0, uintptr(syscall.SIGCHLD), 0, 0, 0, 0)
	} else {
		pid, _, errno = syscall.RawSyscall6(unix.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	return pid, errno
}

// intermediate is the cloned or forked child. It never returns. Every signal is
// blocked (inherited from the fork), which it keeps for itself: only
// SIGKILL, from the launcher, ends it early.
//
//go:nosplit
//go:norace
//go:nocheckptr
func intermediate(s *start) {
	// Default dispositions for every signal: Go's handlers must not run
	// here, and the program must not inherit an ignored signal.
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig != uintptr(syscall.SIGKILL) && sig != uintptr(syscall.SIGSTOP) {
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&s.sigdfl)), 0, 8, 0, 0)
		}
	}
	// Die with the launcher (then the program's parent is init at once).
	syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	if ppid, _, _ := syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); ppid != s.launcher {
		rawExit(1)
	}
	// Its fds: 0-2 the program's stdio, then its pipes; nothing else.
	// As in syscall.ForkExec: a source below its target is first moved
	// above every source (onto a number, so no new fd is needed), then
	// each is put in place in order, so none is overwritten before use.
	next := uintptr(childFds)
	for i := 0; i < childFds; i++ {
		if uintptr(s.fds[i]) >= next {
			next = uintptr(s.fds[i]) + 1
		}
	}
	for i := 0; i < childFds; i++ {
		if s.fds[i] < i {
			if _, _, errno := syscall.RawSyscall(unix.SYS_DUP3, uintptr(s.fds[i]), next, unix.O_CLOEXEC); errno != 0 {
				setupFailed(s, errno)
			}
			s.fds[i] = int(next)
			next++
		}
	}
	for i := 0; i < childFds; i++ {
		if s.fds[i] == i {
			if i < 3 { // the program's stdio: inherited
				syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0)
			}
		} else {
			flags := uintptr(unix.O_CLOEXEC)
			if i < 3 {
				flags = 0
			}
			if _, _, errno := syscall.RawSyscall(unix.SYS_DUP3, uintptr(s.fds[i]), uintptr(i), flags); errno != 0 {
				setupFailed(s, errno)
			}
		}
		if i == childReport {
			s.fds[childReport] = childReport // where setupFailed writes from now on
		}
	}
	if _, _, errno := syscall.RawSyscall(unix.SYS_CLOSE_RANGE, childFds, ^uintptr(0), 0); errno != 0 {
		for fd := uintptr(childFds); fd < 1<<16; fd++ { // a kernel before 5.9
			syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		}
	}

	// The subreaper of the program's tree.
	_, _, errno := syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_CHILD_SUBREAPER, 1, 0)
	report(s, recSubreaper, uint32(errno))

	var pid uintptr
	if sharedMemoryClone && s.shared {
		var e uintptr
		base := uintptr(unsafe.Pointer(&s.stack[0]))
		pid, e = cloneProgram(unix.CLONE_VM|unix.CLONE_VFORK|uintptr(syscall.SIGCHLD), (base+cloneStack/2)&^15, s)
		errno = syscall.Errno(e)
	} else {
		pid, errno = rawFork()
		if errno == 0 && pid == 0 {
			program(s)
		}
	}
	if errno != 0 {
		report(s, recExec, uint32(errno))
		rawExit(0)
	}
	syscall.RawSyscall(unix.SYS_CLOSE, childExecW, 0, 0)
	for {
		n, _, errno := syscall.RawSyscall(unix.SYS_READ, childExecR, uintptr(unsafe.Pointer(&s.execErr)), 4)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n != 4 {
			s.execErr = 0 // EOF: the exec closed the pipe
		}
		break
	}
	syscall.RawSyscall(unix.SYS_CLOSE, childExecR, 0, 0)
	report(s, recExec, s.execErr)

	// Reap the program and what comes back to us until nothing is left.
	for {
		wpid, _, errno := syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&s.wstatus)),
			unix.WALL, 0, 0, 0)
		if errno == syscall.ECHILD {
			rawExit(0)
		}
		if errno == 0 && wpid == pid {
			report(s, recWait, s.wstatus)
		}
	}
}

// program is the program's process until its exec: a new session, its
// directory and limits, no blocked signal.
//
//go:nosplit
//go:norace
//go:nocheckptr
func program(s *start) {
	syscall.RawSyscall(unix.SYS_CLOSE, childReport, 0, 0)
	syscall.RawSyscall(unix.SYS_CLOSE, childExecR, 0, 0)
	syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	var errno syscall.Errno
	if s.dir != nil {
		if _, _, errno = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(s.dir)), 0, 0); errno != 0 {
			execFailed(errno)
		}
	}
	if s.nofile != nil {
		syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(s.nofile)), 0, 0, 0)
	}
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&s.noSignals)), 0, 8, 0, 0)
	_, _, errno = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(s.path)),
		uintptr(unsafe.Pointer(&s.argv[0])), uintptr(unsafe.Pointer(&s.envv[0])))
	execFailed(errno)
}

//go:nosplit
//go:norace
//go:nocheckptr
func execFailed(errno syscall.Errno) {
	e := uint32(errno)
	syscall.RawSyscall(unix.SYS_WRITE, childExecW, uintptr(unsafe.Pointer(&e)), 4)
	rawExit(127)
}

//go:nosplit
//go:norace
//go:nocheckptr
func report(s *start, kind, value uint32) {
	s.rec[0], s.rec[1] = kind, value
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(s.fds[childReport]), uintptr(unsafe.Pointer(&s.rec)), recSize)
}

// setupFailed reports a failed set-up of the intermediate (out of fds) as
// the program's exec error, and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func setupFailed(s *start, errno syscall.Errno) {
	report(s, recExec, uint32(errno))
	rawExit(1)
}

//go:nosplit
//go:norace
func rawExit(code uintptr) {
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, code, 0, 0)
	}
}
