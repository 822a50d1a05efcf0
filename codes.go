package usrsvc

import (
	"errors"
	"fmt"
)

// Code is one of the stable return codes of usrsvc and usrsvcd.
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

// String returns the code's name, such as "PROGRAM_DISABLED".
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", int(c))
}

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
	{ErrResource, CodeTryAgain},
	{ErrNoAnswer, CodeTryAgain},
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
