package usrsvc

import (
	"time"
)

// Status is what one operation found or left: whether the program runs, its
// process, and what usrsvcd recorded about it.
type Status struct {
	Program string
	Running bool
	Process *Process // nil when not running
	// WasRunning says whether the program ran when the operation began:
	// for start, already running; for stop and restart, there was
	// something to stop.
	WasRunning bool
	// Message says in words what the operation did or found ("started",
	// "already running", "terminated", "not running", ...). It is for
	// people: test Running and WasRunning, not the text.
	Message  string
	Warnings []string // stale pidfile removed, several matches, ...
	// StoppedByHand is true while the program is stopped with usrsvc stop:
	// usrsvcd does not start it until a manual start or restart.
	StoppedByHand bool
	// StoppedByHandAt is when it was stopped by hand (status only).
	StoppedByHandAt time.Time
	// Disabled is true for a program with enabled = false.
	Disabled bool
	// Daemon is usrsvcd's record of the program (state, restarts, last
	// exit); nil when usrsvcd has recorded nothing.
	Daemon *DaemonRecord
	// Usage is the running process's CPU and memory use (status only).
	Usage *Usage
}

// Usage is what a running program uses, read from /proc by status.
type Usage struct {
	// CPUPercent is the CPU time used since the process started, as a
	// percentage of one core over its lifetime.
	CPUPercent float64
	// CPUTime is the CPU time the process used, user and system, to the
	// clock tick.
	CPUTime time.Duration
	// RSSKB is the resident set size (shared pages included), in kB.
	RSSKB int64
	// PrivateKB is the private resident memory (Private_Clean +
	// Private_Dirty, what rss_limit measures), in kB; 0 when not measured
	// (status all skips it: smaps_rollup costs ~0.3 ms a process).
	PrivateKB int64
}

// Result is the outcome of one action on one program, as [Manager.Do] and
// [Manager.DoAll] return it: the Status, or the error, and when.
type Result struct {
	Program string
	Action  Action
	Status  *Status
	Err     error
	Time    time.Time
}

// Code is the return code of this result: CodeOf(Err), and for status
// CodeGeneralFailure when the program does not run.
func (r Result) Code() Code {
	if r.Err != nil {
		return CodeOf(r.Err)
	}
	if r.Action == ActionStatus && (r.Status == nil || !r.Status.Running) {
		return CodeGeneralFailure
	}
	return CodeSuccess
}

// State is the program's supervision state for display: usrsvcd's record
// when there is one, StateStoppedByHand for a manual stop; "" when unknown.
func (st *Status) State() State {
	switch {
	case st.StoppedByHand && !st.Running:
		return StateStoppedByHand
	case st.Daemon != nil && st.Daemon.State != "":
		return st.Daemon.State
	}
	return ""
}
