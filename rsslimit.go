package usrsvc

import (
	"context"
	"fmt"
	"os"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// rssSlackKB is how far the kernel's resident-set counters (field 24 of
// /proc/PID/stat) may lag behind the pages actually mapped: they are
// batched per thread (64 pages each, kernels before 6.2) or per CPU (up to
// 2×CPUs pages each, later kernels), summed exactly only by recent kernels.
// 16 MiB covers 64 threads or 32 CPUs of pending updates.
const rssSlackKB = 16 << 10

// rssLimit is a [Monitor] that restarts a program whose private resident
// memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup, in kB)
// is above LimitKB: the rss_limit key of [[Monitor]]. Memory shared with
// other processes (libraries, pages shared after fork) does not count.
//
// Reading smaps_rollup walks the process's page tables (hundreds of
// microseconds for a small Go program, more for a large heap), so Check
// reads it only when it matters: private memory is part of the resident set
// size, which the kernel keeps as a counter (/proc/PID/stat), so a process
// whose whole resident set is below LimitKB by more than the counters'
// batching slack (16 MiB) is under the limit without walking anything.
//
// A process whose memory cannot be read — gone, a zombie, another user's
// non-dumpable process — is the monitor's failure, an error wrapping
// [ErrMonitorUnavailable], never a restart. When p.StartTicks is set, a pid
// that now belongs to another process (pid reuse) is such a failure too, so
// a stranger is never blamed.
type rssLimit struct {
	// LimitKB is the limit in kB; 0 or less never restarts.
	LimitKB int64

	fs proc.FS // the zero FS is /proc
}

// Name returns "rss_limit".
func (r *rssLimit) Name() string { return "rss_limit" }

// Check returns an error when p's private memory is above r.LimitKB.
func (r *rssLimit) Check(ctx context.Context, p Process) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
	}
	st, err := r.same(p)
	if err != nil {
		return err
	}
	if r.LimitKB <= 0 {
		return nil
	}
	if rssKB := st.RSSPages * int64(os.Getpagesize()) >> 10; rssKB+rssSlackKB <= r.LimitKB {
		return nil // private ≤ resident: under the limit
	}
	m, err := r.fs.Memory(p.PID)
	if err != nil {
		return fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
	}
	if m.PrivateKB <= r.LimitKB {
		return nil
	}
	// Still the same process after the walk?
	if _, err := r.same(p); err != nil {
		return err
	}
	return fmt.Errorf("private memory %d kB above rss_limit %d kB", m.PrivateKB, r.LimitKB)
}

// same reads p's /proc/PID/stat and makes sure it is still p, alive.
func (r *rssLimit) same(p Process) (*proc.Process, error) {
	st, err := r.fs.Stat(p.PID)
	if err != nil {
		return nil, fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
	}
	if p.StartTicks != 0 && st.StartTicks != p.StartTicks {
		return nil, fmt.Errorf("%w: rss_limit: pid %d is no longer the program's process", ErrMonitorUnavailable, p.PID)
	}
	if st.Zombie() {
		return nil, fmt.Errorf("%w: rss_limit: pid %d has exited", ErrMonitorUnavailable, p.PID)
	}
	return st, nil
}
