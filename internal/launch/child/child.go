// Package child is the code that runs in the processes a usrsvc launcher
// forks without exec: a program's intermediate, and the program's own
// process until its exec.
//
// A forked child of a Go process has its own copy of the parent's memory
// but only the thread that forked: the runtime's other threads are gone,
// and the locks they held stay held. So, as in the standard library's own
// fork-and-exec (syscall.forkAndExecInChild), the code that runs there is
// made of raw system calls only: no allocation, no stack growth (nosplit),
// no race or pointer-check instrumentation (norace, nocheckptr), no bounds
// or nil checks (every index is a constant or proven in range, every
// pointer prepared before the fork), no call into the runtime. Nothing is
// shared with the launcher: both processes are plain forks (no CLONE_VM).
// A test of package launch disassembles these functions in the test binary
// (so under the flags it was built with, -race included) and fails on any
// call outside syscall.RawSyscall and RawSyscall6.
//
// The package has no tests of its own on purpose: `go test -cover` then
// never instruments it (in atomic mode, under -race, a coverage counter is
// a call into sync/atomic and the race runtime).
package child

import (
	"runtime"
	"syscall"
	"unsafe"
)

// The system calls used (their numbers differ between architectures).
const (
	sysClose        = syscall.SYS_CLOSE
	sysDup3         = syscall.SYS_DUP3
	sysFcntl        = syscall.SYS_FCNTL
	sysRead         = syscall.SYS_READ
	sysWrite        = syscall.SYS_WRITE
	sysWait4        = syscall.SYS_WAIT4
	sysExitGroup    = syscall.SYS_EXIT_GROUP
	sysSetsid       = syscall.SYS_SETSID
	sysChdir        = syscall.SYS_CHDIR
	sysUmask        = syscall.SYS_UMASK
	sysExecve       = syscall.SYS_EXECVE
	sysPrctl        = syscall.SYS_PRCTL
	sysGetppid      = syscall.SYS_GETPPID
	sysRtSigaction  = syscall.SYS_RT_SIGACTION
	sysRtSigprocmsk = syscall.SYS_RT_SIGPROCMASK
	sysPrlimit64    = syscall.SYS_PRLIMIT64
	sysClone        = syscall.SYS_CLONE
	sysCloseRange   = 436 // the same number on every architecture

	prSetPdeathsig      = 1
	prSetChildSubreaper = 36
	sigSetmask          = 2
	fdCloexec           = syscall.FD_CLOEXEC
	wall                = 0x40000000
)

// Records the intermediate writes on its report pipe: two native-endian
// uint32, a kind and a value.
const (
	RecSubreaper = 1 // value: the errno of PR_SET_CHILD_SUBREAPER (0: done)
	RecExec      = 2 // value: the program's set-up and exec (see [Step]; 0: it runs)
	RecWait      = 3 // value: the program's wait status, when it ended
	RecPid       = 4 // value: the pid of the program's process, once forked
	RecSize      = 8
)

// The steps before a program runs, as told by a [RecExec] value: the step
// in bits 24-31, a detail in bits 16-23 (the resource of StepLimit), the
// errno in bits 0-15.
const (
	StepExec  = 0 // the execve
	StepChdir = 1 // entering the working directory
	StepLimit = 2 // a resource limit (the detail is the resource)
	StepFork  = 3 // forking the program's process
	StepSetup = 4 // the intermediate's own set-up (its fds)
)

// Step splits a [RecExec] value.
func Step(v uint32) (step, detail int, errno syscall.Errno) {
	return int(v >> 24), int(v >> 16 & 0xff), syscall.Errno(v & 0xffff)
}

// The fds of the intermediate, set up before the program's fork: the
// program's stdio, then its own pipes (close-on-exec).
const (
	Report = 3 // the report pipe's write end
	ExecW  = 4 // the exec pipe's write end: the program writes its failure
	ExecR  = 5 // the exec pipe's read end: EOF tells the exec worked
	NFds   = 6
)

// MaxLimits bounds the resource limits set in a program's process.
const MaxLimits = 8

// Limit is a resource limit to set, as prlimit64 takes it.
type Limit struct {
	Resource uintptr
	Rlim     [2]uint64 // soft, hard
}

// Start is what the intermediate and the program's process need, all
// prepared before the fork (they may not allocate or index unchecked).
type Start struct {
	Path *byte  // the executable
	Argv **byte // the first of a nil-terminated array
	Envv **byte // the first of a nil-terminated array
	Dir  *byte  // nil: stay

	Fds      [NFds]int // the fds to put at 0..NFds-1 in the intermediate
	Launcher uintptr   // the launcher's pid: the intermediate dies with it

	// Nofile, when HasNofile, is set first, failures ignored: the caller's
	// original open-files limit, which Go raised in the launcher.
	Nofile    [2]uint64
	HasNofile bool
	// Limits[:NLimits] are the program's own limits; a failure fails the
	// start (StepLimit).
	Limits  [MaxLimits]Limit
	NLimits int
	Umask   int // -1: keep the launcher's (its caller's)

	// Scratch of the children, in their own copy of this struct.
	sigdfl     [4]uint64 // a zeroed struct sigaction: SIG_DFL
	noSignals  uint64
	allSignals uint64
	wstatus    uint32
	rec        [2]uint32
	execRec    uint32
}

// Fork starts the intermediate for s (a plain fork of this process) and
// returns its pid. s may be changed or dropped once Fork returns: the
// intermediate has its own copy.
func Fork(s *Start) (int, syscall.Errno) {
	s.allSignals = ^uint64(0)
	s.noSignals = 0
	s.sigdfl = [4]uint64{}
	// The fork happens on one thread with every signal blocked, so that no
	// Go signal handler runs in the child before it resets them; ForkLock
	// keeps other goroutines' fds without close-on-exec from leaking.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	syscall.ForkLock.Lock()
	pid, errno := forkIntermediate(s)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(s)
	return pid, errno
}

// forkIntermediate runs in both processes: the parent returns, the child
// runs the intermediate.
//
//go:noinline
//go:nosplit
//go:norace
//go:nocheckptr
func forkIntermediate(s *Start) (int, syscall.Errno) {
	var old uint64
	syscall.RawSyscall6(sysRtSigprocmsk, sigSetmask, uintptr(unsafe.Pointer(&s.allSignals)),
		uintptr(unsafe.Pointer(&old)), 8, 0, 0)
	pid, errno := rawFork()
	if errno != 0 || pid != 0 {
		syscall.RawSyscall6(sysRtSigprocmsk, sigSetmask, uintptr(unsafe.Pointer(&old)), 0, 8, 0, 0)
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
		pid, _, errno = syscall.RawSyscall6(sysClone, 0, uintptr(syscall.SIGCHLD), 0, 0, 0, 0)
	} else {
		pid, _, errno = syscall.RawSyscall6(sysClone, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	return pid, errno
}

// intermediate is the forked child. It never returns. Every signal is
// blocked (inherited from the fork), which it keeps for itself: only
// SIGKILL, from the launcher, ends it early.
//
//go:nosplit
//go:norace
//go:nocheckptr
func intermediate(s *Start) {
	// Default dispositions for every signal: Go's handlers must not run
	// here, and the program must not inherit an ignored signal.
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig != uintptr(syscall.SIGKILL) && sig != uintptr(syscall.SIGSTOP) {
			syscall.RawSyscall6(sysRtSigaction, sig, uintptr(unsafe.Pointer(&s.sigdfl)), 0, 8, 0, 0)
		}
	}
	// Die with the launcher (then the program's parent is init at once).
	syscall.RawSyscall(sysPrctl, prSetPdeathsig, uintptr(syscall.SIGKILL), 0)
	if ppid, _, _ := syscall.RawSyscall(sysGetppid, 0, 0, 0); ppid != s.Launcher {
		rawExit(1)
	}
	// Its fds: 0-2 the program's stdio, then its pipes; nothing else.
	// As in syscall.ForkExec: a source below its target is first moved
	// above every source (onto a number, so no new fd is needed), then
	// each is put in place in order, so none is overwritten before use.
	// (Indexes below NFds: the compiler proves them in range.)
	next := uintptr(NFds)
	for i := 0; i < NFds; i++ {
		if uintptr(s.Fds[i]) >= next {
			next = uintptr(s.Fds[i]) + 1
		}
	}
	for i := 0; i < NFds; i++ {
		if s.Fds[i] < i {
			if _, _, errno := syscall.RawSyscall(sysDup3, uintptr(s.Fds[i]), next, syscall.O_CLOEXEC); errno != 0 {
				setupFailed(s, errno)
			}
			s.Fds[i] = int(next)
			next++
		}
	}
	for i := 0; i < NFds; i++ {
		if s.Fds[i] == i {
			if i < 3 { // the program's stdio: inherited
				syscall.RawSyscall(sysFcntl, uintptr(i), syscall.F_SETFD, 0)
			}
		} else {
			flags := uintptr(syscall.O_CLOEXEC)
			if i < 3 {
				flags = 0
			}
			if _, _, errno := syscall.RawSyscall(sysDup3, uintptr(s.Fds[i]), uintptr(i), flags); errno != 0 {
				setupFailed(s, errno)
			}
		}
		if i == Report {
			s.Fds[Report] = Report // where setupFailed writes from now on
		}
	}
	if _, _, errno := syscall.RawSyscall(sysCloseRange, NFds, ^uintptr(0), 0); errno != 0 {
		for fd := uintptr(NFds); fd < 1<<16; fd++ { // a kernel before 5.9
			syscall.RawSyscall(sysClose, fd, 0, 0)
		}
	}

	// The subreaper of the program's tree.
	_, _, errno := syscall.RawSyscall(sysPrctl, prSetChildSubreaper, 1, 0)
	report(s, RecSubreaper, uint32(errno))

	pid, errno := rawFork()
	if errno == 0 && pid == 0 {
		program(s)
	}
	if errno != 0 {
		report(s, RecExec, StepFork<<24|uint32(errno))
		rawExit(0)
	}
	report(s, RecPid, uint32(pid))
	syscall.RawSyscall(sysClose, ExecW, 0, 0)
	for {
		n, _, errno := syscall.RawSyscall(sysRead, ExecR, uintptr(unsafe.Pointer(&s.execRec)), 4)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n != 4 {
			s.execRec = 0 // EOF: the exec closed the pipe
		}
		break
	}
	syscall.RawSyscall(sysClose, ExecR, 0, 0)
	report(s, RecExec, s.execRec)

	// Reap the program and what comes back to us until nothing is left.
	for {
		wpid, _, errno := syscall.RawSyscall6(sysWait4, ^uintptr(0), uintptr(unsafe.Pointer(&s.wstatus)), wall, 0, 0, 0)
		if errno == syscall.ECHILD {
			rawExit(0)
		}
		if errno == 0 && wpid == pid {
			report(s, RecWait, s.wstatus)
		}
	}
}

// program is the program's process until its exec: a new session, its
// umask, directory and limits, no blocked signal.
//
//go:nosplit
//go:norace
//go:nocheckptr
func program(s *Start) {
	syscall.RawSyscall(sysClose, Report, 0, 0)
	syscall.RawSyscall(sysClose, ExecR, 0, 0)
	syscall.RawSyscall(sysSetsid, 0, 0, 0)
	if s.Umask >= 0 {
		syscall.RawSyscall(sysUmask, uintptr(s.Umask), 0, 0)
	}
	if s.Dir != nil {
		if _, _, errno := syscall.RawSyscall(sysChdir, uintptr(unsafe.Pointer(s.Dir)), 0, 0); errno != 0 {
			execFailed(s, StepChdir<<24|uint32(errno))
		}
	}
	if s.HasNofile {
		syscall.RawSyscall6(sysPrlimit64, 0, uintptr(syscall.RLIMIT_NOFILE), uintptr(unsafe.Pointer(&s.Nofile)), 0, 0, 0)
	}
	for i := 0; i < MaxLimits; i++ {
		if i >= s.NLimits {
			break
		}
		l := &s.Limits[i]
		if _, _, errno := syscall.RawSyscall6(sysPrlimit64, 0, l.Resource, uintptr(unsafe.Pointer(&l.Rlim)), 0, 0, 0); errno != 0 {
			execFailed(s, StepLimit<<24|uint32(l.Resource&0xff)<<16|uint32(errno))
		}
	}
	syscall.RawSyscall6(sysRtSigprocmsk, sigSetmask, uintptr(unsafe.Pointer(&s.noSignals)), 0, 8, 0, 0)
	_, _, errno := syscall.RawSyscall(sysExecve, uintptr(unsafe.Pointer(s.Path)),
		uintptr(unsafe.Pointer(s.Argv)), uintptr(unsafe.Pointer(s.Envv)))
	execFailed(s, StepExec<<24|uint32(errno))
}

// execFailed tells the intermediate why the program could not run, and
// exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func execFailed(s *Start, rec uint32) {
	s.execRec = rec
	syscall.RawSyscall(sysWrite, ExecW, uintptr(unsafe.Pointer(&s.execRec)), 4)
	rawExit(127)
}

//go:nosplit
//go:norace
//go:nocheckptr
func report(s *Start, kind, value uint32) {
	s.rec[0], s.rec[1] = kind, value
	syscall.RawSyscall(sysWrite, uintptr(s.Fds[Report]), uintptr(unsafe.Pointer(&s.rec)), RecSize)
}

// setupFailed reports a failed set-up of the intermediate (out of fds),
// and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func setupFailed(s *Start, errno syscall.Errno) {
	report(s, RecExec, StepSetup<<24|uint32(errno))
	rawExit(1)
}

//go:nosplit
//go:norace
//go:nocheckptr
func rawExit(code uintptr) {
	for {
		syscall.RawSyscall(sysExitGroup, code, 0, 0)
	}
}
