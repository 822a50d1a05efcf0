// Package startlimit records the soft limit on open files the process was
// started with, before Go's runtime raises it.
//
// Go's syscall package raises the soft RLIMIT_NOFILE to the hard limit in
// its init, and gives processes it starts with syscall.ForkExec the original
// back. usrsvc's launcher starts programs with a fork of its own (see package
// launch), so it must restore the original itself, and only this package
// can know it: it imports nothing, so Go's initialisation order (a package
// whose imports are initialised, first by import path) runs its init before
// syscall's, and it reads the limit with a system call of its own in
// assembly.
package startlimit

// Cur and Max are the soft and hard RLIMIT_NOFILE at the start of the
// process; Known is false where they could not be read (an architecture
// without the assembly, or a failed call: programs then get Go's raised
// soft limit).
var (
	Cur, Max uint64
	Known    bool
)

func init() {
	var lim [2]uint64
	if prlimitNofile(&lim) == 0 {
		Cur, Max, Known = lim[0], lim[1], true
	}
}
