// Package exitcode is the table of the stable return codes of usrsvc,
// usrsvcd and usrsvcweb's API, and the mapping of the library's errors to
// them. It lives beside the command-line tools, not in package usrsvc: the
// codes are the tools' contract with scripts, while a Go program embedding
// the library tests its errors with errors.Is against the sentinels.
package exitcode

import (
	"fmt"

	"github.com/usrsvc/usrsvc/internal/errs"
)

// Code is one of the stable return codes.
type Code int

// The return codes. Their values are a stable API: scripts test them.
const (
	Success                 Code = 0
	GeneralFailure          Code = 1
	TryAgain                Code = 11
	InvalidConfig           Code = 130
	InvalidAction           Code = 131
	ProgramDisabled         Code = 132
	ProgramUndefined        Code = 133
	ProgramExited           Code = 134
	UsrsvcdAlreadyRunning   Code = 135
	InsufficientPermissions Code = 136
	ProgramFailedToLaunch   Code = 137
	HelpMessage             Code = 138
	UnknownFailure          Code = 254
)

var names = map[Code]string{
	Success:                 "SUCCESS",
	GeneralFailure:          "GENERAL_FAILURE",
	TryAgain:                "TRY_AGAIN",
	InvalidConfig:           "INVALID_CONFIG",
	InvalidAction:           "INVALID_ACTION",
	ProgramDisabled:         "PROGRAM_DISABLED",
	ProgramUndefined:        "PROGRAM_UNDEFINED",
	ProgramExited:           "PROGRAM_EXITED_UNEXPECTEDLY",
	UsrsvcdAlreadyRunning:   "USRSVCD_ALREADY_RUNNING",
	InsufficientPermissions: "INSUFFICIENT_PERMISSIONS",
	ProgramFailedToLaunch:   "PROGRAM_FAILED_TO_LAUNCH",
	HelpMessage:             "HELP_MESSAGE",
	UnknownFailure:          "UNKNOWN_FAILURE",
}

// String returns the code's name, such as "PROGRAM_DISABLED".
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", int(c))
}

// priority orders the codes when an error wraps several sentinels: the
// configuration first, then what the caller asked, then resources (try
// again), then what happened to the program.
var priority = []Code{InvalidConfig, InvalidAction, ProgramUndefined, ProgramDisabled, TryAgain,
	UsrsvcdAlreadyRunning, InsufficientPermissions, ProgramFailedToLaunch, ProgramExited, GeneralFailure}

// Of maps an error of the library to its return code: nil is Success, an
// error wrapping sentinels gets the code of the first of them in priority
// order, and anything else is UnknownFailure (a bug).
func Of(err error) Code {
	if err == nil {
		return Success
	}
	found := map[Code]bool{}
	walk(err, func(s *errs.Sentinel) { found[Code(s.Code())] = true })
	for _, c := range priority {
		if found[c] {
			return c
		}
	}
	return UnknownFailure
}

// walk calls f for every sentinel in err's tree.
func walk(err error, f func(*errs.Sentinel)) {
	for err != nil {
		if s, ok := err.(*errs.Sentinel); ok {
			f(s)
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}
