package usrsvc

import "time"

// Process identifies one running process of a program. Identity is the pid
// plus the start time (StartTicks), so a reused pid is never mistaken for the
// program.
type Process struct {
	PID        int       // process id
	StartTicks uint64    // start time in clock ticks since boot (field 22 of /proc/PID/stat)
	Started    time.Time // start time as wall-clock time
	Title      string    // /proc/PID/cmdline with NULs turned into spaces
	Executable string    // resolved /proc/PID/exe, "" when unreadable
	Args       []string  // argv
}

// Same reports whether p and q are the same process (pid and start time).
func (p Process) Same(q Process) bool {
	return p.PID == q.PID && p.StartTicks == q.StartTicks
}
