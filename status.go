package usrsvc

// Status is what one operation found or left: whether the program runs, its
// process, and what usrsvcd recorded about it.
type Status struct {
	Program  string
	Running  bool
	Process  *Process // nil when not running
	Message  string   // "started", "already running", "stopped", "not running", ...
	Warnings []string // stale pidfile removed, several matches, ...
	// StoppedByHand is true while the program is stopped with usrsvc stop:
	// usrsvcd does not start it until a manual start or restart.
	StoppedByHand bool
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
	// RSSKB is the resident set size (shared pages included), in kB.
	RSSKB int64
	// PrivateKB is the private resident memory (Private_Clean +
	// Private_Dirty, what rss_limit measures), in kB; 0 when not measured
	// (status all skips it: smaps_rollup costs ~0.3 ms a process).
	PrivateKB int64
}
