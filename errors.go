package usrsvc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the library returns wraps one of them (test
// with [errors.Is]); [CodeOf] maps them to return codes.
var (
	// ErrNotRunning: the program has no matching process (status, or no match after a start).
	ErrNotRunning = errors.New("not running")
	// ErrNoMatch: the program was launched and runs, but nothing matches proctitle_re.
	ErrNoMatch = errors.New("running but nothing matches proctitle_re")
	// ErrLocked: another operation held the program's lock for too long.
	ErrLocked = errors.New("lock held by another operation")
	// ErrInvalidConfig: the configuration does not load (see *ConfigError).
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrInvalidAction: unknown action, or a missing program name.
	ErrInvalidAction = errors.New("invalid action")
	// ErrDisabled: start/restart of a program with enabled = false.
	ErrDisabled = errors.New("program is disabled")
	// ErrUndefined: no program of that name is configured.
	ErrUndefined = errors.New("no such program")
	// ErrExited: the program exited or was killed during success_seconds.
	ErrExited = errors.New("exited during success_seconds")
	// ErrDaemonRunning: usrsvcd start while a usrsvcd already runs.
	ErrDaemonRunning = errors.New("usrsvcd is already running")
	// ErrPermission: a file or directory cannot be read or written.
	ErrPermission = errors.New("insufficient permissions")
	// ErrLaunch: the program could not be executed (exec error).
	ErrLaunch = errors.New("failed to launch")
	// ErrFailed: any other failure of an operation (e.g. one of an "all" operation failed).
	ErrFailed = errors.New("failed")
)

// ProgramError is the error of one operation on one program. It wraps a
// sentinel error (Err) and says which program and operation failed.
type ProgramError struct {
	Program string // program name
	Op      string // "start", "stop", "restart", "status"
	Err     error  // wraps a sentinel error
}

// Error says which operation on which program failed, and why.
func (e *ProgramError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Program, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProgramError) Unwrap() error { return e.Err }
