// Package errs holds usrsvc's sentinel errors and the helpers that build
// errors around them. Package usrsvc re-exports every sentinel (ErrLocked
// is errs.Locked), so errors.Is works whichever package built the error;
// the internal packages (statedir, launch callers, web) wrap them without
// importing package usrsvc.
//
// Each sentinel carries the return code the command-line tools exit with
// when an operation fails with it (see package exitcode).
package errs

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel is a sentinel error with its return code.
type Sentinel struct {
	msg  string
	code int
}

func (s *Sentinel) Error() string { return s.msg }

// Code is the return code of the tools for this error.
func (s *Sentinel) Code() int { return s.code }

func newSentinel(msg string, code int) *Sentinel { return &Sentinel{msg: msg, code: code} }

// The sentinels, with their return codes.
var (
	NotRunning     = newSentinel("not running", 1)
	NoMatch        = newSentinel("running but nothing matches proctitle_re", 1)
	Failed         = newSentinel("failed", 1)
	Locked         = newSentinel("lock held by another operation", 11)
	Resource       = newSentinel("out of resources", 11)
	NoAnswer       = newSentinel("no answer from usrsvcd", 11)
	InvalidConfig  = newSentinel("invalid configuration", 130)
	InvalidAction  = newSentinel("invalid action", 131)
	Disabled       = newSentinel("program is disabled", 132)
	Undefined      = newSentinel("no such program", 133)
	Exited         = newSentinel("exited during success_seconds", 134)
	NotReady       = newSentinel("not ready in time", 1)
	DaemonRunning  = newSentinel("usrsvcd is already running", 135)
	Permission     = newSentinel("insufficient permissions", 136)
	Launch         = newSentinel("failed to launch", 137)
	MonitorUnavail = newSentinel("monitor could not check", 1)
)

// Running out of a resource — open files, processes, disk space, memory —
// is not a permission problem and not a verdict: nothing was done or
// decided, and the same operation works once the resource is freed. Such
// errors wrap Resource (code 11, TRY_AGAIN) with a message that names the
// resource and the fix; every other failure to read or write a file is
// Permission (136).

// ResourceErrno returns the errno of err when it says that a resource ran
// out: EMFILE, ENFILE (open files), ENOSPC, EDQUOT (disk space), ENOMEM.
// EAGAIN means out of processes only where a fork or clone returned it (the
// launcher tells which): elsewhere it is a would-block, not a resource.
func ResourceErrno(err error) (syscall.Errno, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOSPC, syscall.EDQUOT, syscall.ENOMEM:
		return errno, true
	}
	return 0, false
}

// IsResource reports whether err says that a resource ran out.
func IsResource(err error) bool {
	_, ok := ResourceErrno(err)
	return ok
}

// ResourceHelp says what ran out and what to do about it.
func ResourceHelp(errno syscall.Errno) string {
	switch errno {
	case syscall.EMFILE:
		var lim syscall.Rlimit
		limit := ""
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
			limit = fmt.Sprintf(", limit %d", lim.Cur)
		}
		return fmt.Sprintf("too many open files in this process (EMFILE%s): raise the open-file limit "+
			"(LimitNOFILE= in the systemd unit, ulimit -n in the shell)", limit)
	case syscall.ENFILE:
		return "the system's open-file table is full (ENFILE): close files elsewhere or raise fs.file-max"
	case syscall.ENOSPC:
		return "no space left on device (ENOSPC): free space on that file system"
	case syscall.EDQUOT:
		return "disk quota exceeded (EDQUOT): free space or raise the quota"
	case syscall.ENOMEM:
		return "out of memory (ENOMEM)"
	case syscall.EAGAIN:
		var lim syscall.Rlimit
		limit := ""
		if syscall.Getrlimit(6 /* RLIMIT_NPROC */, &lim) == nil && lim.Cur != ^uint64(0) {
			limit = fmt.Sprintf(", limit %d", lim.Cur)
		}
		return fmt.Sprintf("cannot create a process (EAGAIN: the account's process limit%s, or the system's, is reached): "+
			"raise it (LimitNPROC= in the systemd unit, ulimit -u in the shell) or end processes", limit)
	}
	return errno.Error()
}

// File wraps err, the failure of what (e.g. "writing /x/y.json"): a
// resource error wraps Resource with its own message and fix, anything
// else Permission. The cause stays in the chain either way
// (errors.Is(err, fs.ErrNotExist) holds for a missing file).
func File(what string, err error) error {
	if errno, ok := ResourceErrno(err); ok {
		return &resourceError{msg: fmt.Sprintf("%v: %s: %s", Resource, what, ResourceHelp(errno)), err: err}
	}
	return fmt.Errorf("%w: %s: %w", Permission, what, err)
}

// resourceError is Resource with its own words for the errno, wrapping the
// cause too (errors.Is(err, syscall.ENOSPC) holds).
type resourceError struct {
	msg string
	err error
}

func (e *resourceError) Error() string   { return e.msg }
func (e *resourceError) Unwrap() []error { return []error{Resource, e.err} }
