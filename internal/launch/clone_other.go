//go:build linux && !amd64

package launch

// sharedMemoryClone: elsewhere than amd64, the intermediate and the
// program's process are plain forks (correct, but a fork of the launcher
// costs it copy-on-write faults afterwards).
const sharedMemoryClone = false

var programPC uintptr

func cloneIntermediate(flags, stack uintptr, s *start) (pid, errno uintptr) { panic("unreachable") }
func cloneProgram(flags, stack uintptr, s *start) (pid, errno uintptr)      { panic("unreachable") }
