package usrsvc

import (
	"fmt"
	"strings"

	"github.com/usrsvc/usrsvc/internal/errs"
)

// Sentinel errors. Every error the library returns wraps one of them: test
// with [errors.Is]. The command-line tools derive their return codes from
// them (see the table of return codes in docs/commands.md).
var (
	// ErrNotRunning: the program has no running process (Signal, reload).
	ErrNotRunning = errs.NotRunning
	// ErrNoMatch: the program was launched and runs, but nothing matches
	// proctitle_re.
	ErrNoMatch = errs.NoMatch
	// ErrLocked: another operation held the program's lock for too long.
	ErrLocked = errs.Locked
	// ErrInvalidConfig: the configuration does not load (see *ConfigError).
	ErrInvalidConfig = errs.InvalidConfig
	// ErrInvalidAction: an unknown action, a missing program name, or an
	// action the program does not allow (reload without reload_signal).
	ErrInvalidAction = errs.InvalidAction
	// ErrDisabled: start or restart of a program with enabled = false.
	ErrDisabled = errs.Disabled
	// ErrUndefined: no program (or group) of that name is configured.
	ErrUndefined = errs.Undefined
	// ErrExited: the program exited or was killed during its start.
	ErrExited = errs.Exited
	// ErrNotReady: the program did not become ready (its ready key) within
	// ready_timeout, or a dependency did not; what was started is stopped.
	ErrNotReady = errs.NotReady
	// ErrDaemonRunning: Run (usrsvcd) while another one supervises the
	// same state directory.
	ErrDaemonRunning = errs.DaemonRunning
	// ErrPermission: a file or directory cannot be read or written, or is
	// refused because other accounts could change it.
	ErrPermission = errs.Permission
	// ErrResource: the system ran out of something the operation needs:
	// open files (EMFILE, ENFILE), processes (EAGAIN), disk space (ENOSPC,
	// EDQUOT) or memory. Nothing was done or decided; the operation works
	// once it is freed. The errno stays in the chain.
	ErrResource = errs.Resource
	// ErrLaunch: the program could not be executed (exec error).
	ErrLaunch = errs.Launch
	// ErrFailed: any other failure of an operation (it was cancelled, a
	// process survived SIGKILL, ...).
	ErrFailed = errs.Failed
	// ErrMonitorUnavailable is wrapped by a Monitor's error when the
	// monitor could not check (a file it cannot read, a timeout): logged,
	// never a restart.
	ErrMonitorUnavailable = errs.MonitorUnavail
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
// load, and by [Config.Add] and [NewManager] when a configuration has
// problems. It holds every problem found, not only the first, each as
// "file:line: message" (only the message for a program built in Go);
// LoadConfig sorts them by file (the main file first, then config_dir and
// its files by name) and then by line. It wraps [ErrInvalidConfig].
type ConfigError struct {
	Problems []string
}

// Error lists every problem, one per line.
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// Unwrap lets errors.Is(err, ErrInvalidConfig) hold.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// problem is one configuration problem: where it is and what to do about it.
type problem struct {
	File string // absolute path of the file concerned
	Line int    // 1-based line; 0 when the problem concerns the whole file
	Msg  string // what is wrong and what to do
}

// String formats the problem as "file:line: message".
func (p problem) String() string {
	switch {
	case p.File == "": // a program built in Go
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// configError returns the problems as a *ConfigError, nil when there is none.
func configError(ps []problem) error {
	if len(ps) == 0 {
		return nil
	}
	e := &ConfigError{Problems: make([]string, len(ps))}
	for i, p := range ps {
		e.Problems[i] = p.String()
	}
	return e
}

// launchError says exactly why a start failed: the exec error, how the
// program ended during its start and what its stderr file gained, or the
// titles of what runs when nothing matches proctitle_re. The Status of
// the failed start carries its Exit and Stderr.
type launchError struct {
	err     error       // ErrLaunch, ErrExited, ErrNoMatch, ...
	message string      // what happened
	exit    *ExitStatus // how it ended, for ErrExited and the shell's 126/127
	stderr  []string    // lines the stderr file gained since the launch
}

func (e *launchError) Error() string { return e.message }
func (e *launchError) Unwrap() error { return e.err }
