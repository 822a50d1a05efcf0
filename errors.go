package usrsvc

import (
	"errors"
	"fmt"
	"strings"
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
	// ErrResource: the system ran out of something the operation needs:
	// open files (EMFILE, ENFILE), disk space (ENOSPC, EDQUOT) or memory.
	// Nothing was done or decided; the operation works once it is freed.
	ErrResource = errors.New("out of resources")
	// ErrLaunch: the program could not be executed (exec error).
	ErrLaunch = errors.New("failed to launch")
	// ErrNoAnswer: usrsvcd did not acknowledge a reread in time (SignalReread).
	ErrNoAnswer = errors.New("no answer from usrsvcd")
	// ErrFailed: any other failure of an operation (e.g. one of an "all" operation failed).
	ErrFailed = errors.New("failed")
)

// ProgramError is the error of one operation on one program. It wraps a
// sentinel error (Err) and says which program and operation failed.
type ProgramError struct {
	Program string // program name
	Op      Action // the operation that failed
	Err     error  // wraps a sentinel error
}

// Error says which operation on which program failed, and why.
func (e *ProgramError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Program, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProgramError) Unwrap() error { return e.Err }

// ConfigError is returned by [LoadConfig] when the configuration does not
// load, and by [Config.Validate], [Config.Add] and [NewManager] when a
// configuration has problems. It holds every problem found, not only the
// first, each with the file and line it concerns (none for a program built
// in Go); LoadConfig sorts them by file (the main file first, then
// config_dir and its files by name) and then by line. It maps to
// [CodeInvalidConfig] and wraps [ErrInvalidConfig].
type ConfigError struct {
	Problems []Problem
}

// Problem is one configuration problem: where it is and what to do about it.
type Problem struct {
	File string // absolute path of the file concerned
	Line int    // 1-based line; 0 when the problem concerns the whole file (missing, unreadable, unsafe mode or owner, no [Main])
	Msg  string // what is wrong and what to do
}

// String formats the problem as "file:line: message".
func (p Problem) String() string {
	switch {
	case p.File == "": // a program built in Go
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Error lists every problem, one per line.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// LaunchError says exactly why a start failed: the exec error, how the
// program ended during success_seconds and what its stderr file gained, or
// the titles of what runs when nothing matches proctitle_re.
type LaunchError struct {
	Err     error       // ErrLaunch, ErrExited, ErrNoMatch, ...
	Message string      // what happened
	Exit    *ExitStatus // how it ended, for ErrExited and the shell's 126/127
	Stderr  []string    // lines the stderr file gained since the launch
	Titles  []string    // running descendants when nothing matched
}

// Error is the message: exactly why the start failed.
func (e *LaunchError) Error() string { return e.Message }

// Unwrap returns the sentinel error.
func (e *LaunchError) Unwrap() error { return e.Err }
