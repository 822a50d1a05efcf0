package usrsvc

import (
	"errors"
	"fmt"
)

// Code is one of the stable return codes of usrsvc and usrsvcd (SPEC §4).
// The command-line tools exit with it; embedders get it from [CodeOf].
type Code int

// The return codes. Their values are a stable API: scripts test them.
const (
	CodeSuccess                 Code = 0
	CodeGeneralFailure          Code = 1
	CodeTryAgain                Code = 11
	CodeInvalidConfig           Code = 130
	CodeInvalidAction           Code = 131
	CodeProgramDisabled         Code = 132
	CodeProgramUndefined        Code = 133
	CodeProgramExited           Code = 134
	CodeUsrsvcdAlreadyRunning   Code = 135
	CodeInsufficientPermissions Code = 136
	CodeProgramFailedToLaunch   Code = 137
	CodeHelpMessage             Code = 138
	CodeUnknownFailure          Code = 254
)

var codeNames = map[Code]string{
	CodeSuccess:                 "SUCCESS",
	CodeGeneralFailure:          "GENERAL_FAILURE",
	CodeTryAgain:                "TRY_AGAIN",
	CodeInvalidConfig:           "INVALID_CONFIG",
	CodeInvalidAction:           "INVALID_ACTION",
	CodeProgramDisabled:         "PROGRAM_DISABLED",
	CodeProgramUndefined:        "PROGRAM_UNDEFINED",
	CodeProgramExited:           "PROGRAM_EXITED_UNEXPECTEDLY",
	CodeUsrsvcdAlreadyRunning:   "USRSVCD_ALREADY_RUNNING",
	CodeInsufficientPermissions: "INSUFFICIENT_PERMISSIONS",
	CodeProgramFailedToLaunch:   "PROGRAM_FAILED_TO_LAUNCH",
	CodeHelpMessage:             "HELP_MESSAGE",
	CodeUnknownFailure:          "UNKNOWN_FAILURE",
}

// Codes lists every return code in ascending order.
func Codes() []Code {
	return []Code{CodeSuccess, CodeGeneralFailure, CodeTryAgain, CodeInvalidConfig,
		CodeInvalidAction, CodeProgramDisabled, CodeProgramUndefined, CodeProgramExited,
		CodeUsrsvcdAlreadyRunning, CodeInsufficientPermissions, CodeProgramFailedToLaunch,
		CodeHelpMessage, CodeUnknownFailure}
}

// String returns the code's name, such as "PROGRAM_DISABLED".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", int(c))
}

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

var sentinelCodes = []struct {
	err  error
	code Code
}{
	{ErrInvalidConfig, CodeInvalidConfig},
	{ErrInvalidAction, CodeInvalidAction},
	{ErrUndefined, CodeProgramUndefined},
	{ErrDisabled, CodeProgramDisabled},
	{ErrLocked, CodeTryAgain},
	{ErrDaemonRunning, CodeUsrsvcdAlreadyRunning},
	{ErrPermission, CodeInsufficientPermissions},
	{ErrLaunch, CodeProgramFailedToLaunch},
	{ErrExited, CodeProgramExited},
	{ErrNoMatch, CodeGeneralFailure},
	{ErrNotRunning, CodeGeneralFailure},
	{ErrFailed, CodeGeneralFailure},
}

// CodeOf maps an error returned by the library to its return code: nil is
// CodeSuccess, an error wrapping a sentinel gets that sentinel's code, and
// anything else is CodeUnknownFailure (a bug).
func CodeOf(err error) Code {
	if err == nil {
		return CodeSuccess
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return CodeInvalidConfig
	}
	for _, sc := range sentinelCodes {
		if errors.Is(err, sc.err) {
			return sc.code
		}
	}
	return CodeUnknownFailure
}

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
