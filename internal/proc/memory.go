package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Memory is a process's memory use, in kB.
type Memory struct {
	// RSSKB is the resident set size (Rss).
	RSSKB int64
	// PrivateKB is Private_Clean + Private_Dirty: the resident memory that
	// only this process uses (shared libraries and pages shared with a
	// parent or children after fork not included).
	PrivateKB int64
}

// Memory reads /proc/PID/smaps_rollup, or sums /proc/PID/smaps when the
// kernel has no smaps_rollup (before 4.14). Reading it walks the process's
// page tables: its cost grows with the mapping size (about 1 ms for
// 200 MiB), so sample it at a monitor's interval, not in a tight loop.
//
// Errors are returned wrapped: [os.ErrNotExist] when the process is gone,
// or has no memory (a zombie, a kernel thread: the kernel answers ESRCH),
// [os.ErrPermission] for another user's process; callers treat any error as
// "could not check".
func (fs FS) Memory(pid int) (Memory, error) {
	path := fs.path(pid, "smaps_rollup")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// No smaps_rollup: an old kernel, or the process is gone.
		path = fs.path(pid, "smaps")
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return Memory{}, wrapErr("read", path, err)
	}
	m, err := parseSmaps(b)
	if err != nil {
		return Memory{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// parseSmaps sums the Rss, Private_Clean and Private_Dirty lines (kB) of
// smaps or smaps_rollup content.
func parseSmaps(b []byte) (Memory, error) {
	var m Memory
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "Rss":
			dst = &m.RSSKB
		case "Private_Clean", "Private_Dirty":
			dst = &m.PrivateKB
		default:
			continue
		}
		num, ok := bytes.CutSuffix(bytes.TrimSpace(val), []byte(" kB"))
		if !ok {
			return Memory{}, fmt.Errorf("%s: %q is not in kB: %w", key, val, ErrFormat)
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(num)), 10, 64)
		if err != nil || n < 0 {
			return Memory{}, fmt.Errorf("%s: bad number %q: %w", key, num, ErrFormat)
		}
		*dst += n
	}
	return m, nil
}

// Status returns the real uid of the process: the first number of the
// "Uid:" line of /proc/PID/status. (The owner of /proc/PID, [Process.UID],
// is the effective uid.)
func (fs FS) Status(pid int) (realUID int, err error) {
	st, err := fs.status(pid)
	if err != nil {
		return -1, err
	}
	if st.realUID < 0 {
		return -1, fmt.Errorf("%s: no Uid line: %w", fs.path(pid, "status"), ErrFormat)
	}
	return st.realUID, nil
}

// SignalMasks are the signal sets of /proc/PID/status, one bit per signal
// (bit n-1 for signal n).
type SignalMasks struct {
	Pending, Blocked, Ignored, Caught uint64
}

// Has reports whether signal sig is in mask.
func Has(mask uint64, sig int) bool {
	return sig >= 1 && sig <= 64 && mask&(1<<(sig-1)) != 0
}

// Signals returns the signal masks of the process (SigPnd, SigBlk, SigIgn,
// SigCgt of /proc/PID/status): a launched program should inherit no ignored
// or blocked signal.
func (fs FS) Signals(pid int) (SignalMasks, error) {
	st, err := fs.status(pid)
	if err != nil {
		return SignalMasks{}, err
	}
	if !st.sigs {
		return SignalMasks{}, fmt.Errorf("%s: no signal masks: %w", fs.path(pid, "status"), ErrFormat)
	}
	return st.masks, nil
}

type status struct {
	realUID int
	masks   SignalMasks
	sigs    bool
}

func (fs FS) status(pid int) (status, error) {
	path := fs.path(pid, "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return status{}, wrapErr("read", path, err)
	}
	st, err := parseStatus(b)
	if err != nil {
		return status{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func parseStatus(b []byte) (status, error) {
	st := status{realUID: -1}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val = bytes.TrimSpace(val)
		var mask *uint64
		switch string(key) {
		case "Uid":
			f := bytes.Fields(val)
			if len(f) == 0 {
				return st, fmt.Errorf("empty Uid line: %w", ErrFormat)
			}
			n, ok := atoi(f[0])
			if !ok {
				return st, fmt.Errorf("bad Uid %q: %w", f[0], ErrFormat)
			}
			st.realUID = n
			continue
		case "SigPnd":
			mask = &st.masks.Pending
		case "SigBlk":
			mask = &st.masks.Blocked
		case "SigIgn":
			mask = &st.masks.Ignored
		case "SigCgt":
			mask = &st.masks.Caught
		default:
			continue
		}
		n, err := strconv.ParseUint(string(val), 16, 64)
		if err != nil {
			return st, fmt.Errorf("%s %q: %w", key, val, ErrFormat)
		}
		*mask = n
		st.sigs = true
	}
	return st, nil
}
