//go:build !linux || !(amd64 || arm64)

package startlimit

func prlimitNofile(*[2]uint64) uintptr { return 1 }
