package usrsvc

import (
	"time"
)

// Status is what one operation found or left: whether the program runs, its
// process, what it uses, and what usrsvcd recorded about it.
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
	// Disabled is true for a program with enabled = false.
	Disabled bool

	// State is the program's supervision state: StateStoppedByHand while
	// it is stopped by hand (usrsvcd does not start it until a manual start
	// or restart), else usrsvcd's record while a usrsvcd supervises; ""
	// when unknown.
	State State
	// StoppedByHandAt is when it was stopped by hand (status only).
	StoppedByHandAt time.Time
	// Recorded is true when usrsvcd has a record of the program: Restarts
	// and LastExit come from it.
	Recorded bool
	// Restarts is the number of automatic restarts counted for maxrestarts.
	Restarts int
	// LastExit is how the program last ended: as usrsvcd saw it, or, for a
	// start that failed, how the launched process ended.
	LastExit *ExitStatus
	// NextTry is when usrsvcd tries again a program in backoff.
	NextTry time.Time
	// Reason is why usrsvcd restarted the program, gave up, or waits.
	Reason string
	// Health is "healthy", "unhealthy" or "unknown" (no check ran yet) for
	// a program with health checks that usrsvcd supervises, "" otherwise;
	// HealthReason and HealthAt tell its last failed check, HealthFailures
	// how many failed in a row.
	Health         string
	HealthReason   string
	HealthAt       time.Time
	HealthFailures int

	// CPUPercent is the CPU time used since the process started, as a
	// percentage of one core over its lifetime (status only).
	CPUPercent float64
	// CPUTime is the CPU time the process used, user and system.
	CPUTime time.Duration
	// RSSKB is the resident set size (shared pages included), in kB.
	RSSKB int64
	// PrivateKB is the private resident memory (Private_Clean +
	// Private_Dirty, what rss_limit measures), in kB; 0 when not measured
	// (status of "all" skips it: it costs a read of smaps_rollup a
	// process).
	PrivateKB int64

	// Stderr holds, for a start that failed, the lines the program's
	// stderr file gained since the launch.
	Stderr []string
}

// Result is the outcome of one action on one program, as [Manager.DoAll]
// returns it: the Status, or the error, and when.
type Result struct {
	Program string
	Action  Action
	Status  *Status
	Err     error
	Time    time.Time
}
