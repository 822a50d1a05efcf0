//go:build linux && (amd64 || arm64)

package startlimit

// prlimitNofile reads RLIMIT_NOFILE into old; it returns 0 or the raw
// (negative) result of the system call.
//
//go:noescape
func prlimitNofile(old *[2]uint64) (errno uintptr)
