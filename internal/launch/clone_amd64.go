//go:build linux

package launch

import "unsafe"

// sharedMemoryClone: the intermediate and the program's process are
// cloned with CLONE_VM onto stacks of their own (clone_amd64.s).
const sharedMemoryClone = true

// cloneCall is in clone_amd64.s.
func cloneCall(flags, stack, fn uintptr, s *start) (pid, errno uintptr)

// Entries of the cloned processes: the code of the register-ABI functions.
var (
	intermediatePC = funcPC(intermediateEntry)
	programPC      = funcPC(programEntry)
)

// funcPC returns the code pointer of a top-level function.
func funcPC(f func(*start)) uintptr { return **(**uintptr)(unsafe.Pointer(&f)) }

func cloneIntermediate(flags, stack uintptr, s *start) (pid, errno uintptr) {
	return cloneCall(flags, stack, intermediatePC, s)
}

//go:nosplit
//go:norace
func cloneProgram(flags, stack uintptr, s *start) (pid, errno uintptr) {
	return cloneCall(flags, stack, s.programPC, s)
}

// intermediateEntry is where the cloned intermediate starts (clone_amd64.s).
//
//go:nosplit
//go:norace
//go:nocheckptr
func intermediateEntry(s *start) { intermediate(s) }

// programEntry is where the cloned program's process starts (clone_amd64.s).
//
//go:nosplit
//go:norace
//go:nocheckptr
func programEntry(s *start) { program(s) }
