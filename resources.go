package usrsvc

import (
	"errors"
	"fmt"
	"syscall"
)

// Running out of a resource — open files, disk space — is not a
// permission problem and not a verdict: nothing was done or decided, and
// the same operation works once the resource is freed. Such errors wrap
// ErrResource (code 11, TRY_AGAIN) with a message that names the resource
// and the fix; every other failure to read or write a file stays
// ErrPermission (136).

// resourceErrno returns the errno of err when it says that a resource ran
// out: EMFILE, ENFILE (open files), ENOSPC, EDQUOT (disk space), ENOMEM.
func resourceErrno(err error) (syscall.Errno, bool) {
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

// isResourceErr reports whether err says that a resource ran out.
func isResourceErr(err error) bool {
	_, ok := resourceErrno(err)
	return ok
}

// resourceHelp says what ran out and what to do about it.
func resourceHelp(errno syscall.Errno) string {
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
	}
	return errno.Error()
}

// fileError wraps err, the failure of what (e.g. "writing /x/y.json"): a
// resource error wraps ErrResource with its own message and fix, anything
// else ErrPermission.
func fileError(what string, err error) error {
	if errno, ok := resourceErrno(err); ok {
		return &resourceError{msg: fmt.Sprintf("%v: %s: %s", ErrResource, what, resourceHelp(errno)), errno: errno}
	}
	return fmt.Errorf("%w: %s: %w", ErrPermission, what, err)
}

// resourceError is ErrResource with its own words for the errno, which it
// wraps too (errors.Is(err, syscall.ENOSPC) holds).
type resourceError struct {
	msg   string
	errno syscall.Errno
}

func (e *resourceError) Error() string   { return e.msg }
func (e *resourceError) Unwrap() []error { return []error{ErrResource, e.errno} }
