package usrsvc

import (
	"context"
	"fmt"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// RSSLimit is a [Monitor] that restarts a program whose private resident
// memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup, in kB)
// is above LimitKB: the rss_limit key of [[Monitor]]. Memory shared with
// other processes (libraries, pages shared after fork) does not count.
//
// A process whose memory cannot be read — gone, or another user's
// non-dumpable process — is the monitor's failure, an error wrapping
// [ErrMonitorUnavailable], never a restart. Before it asks for a restart,
// Check makes sure that the pid is still the same process (its start time),
// so a reused pid is never blamed.
type RSSLimit struct {
	// LimitKB is the limit in kB; 0 or less never restarts.
	LimitKB int64

	fs proc.FS // the zero FS is /proc
}

// NewRSSLimit returns an RSSLimit of limitKB kB that reads /proc.
func NewRSSLimit(limitKB int64) *RSSLimit {
	return &RSSLimit{LimitKB: limitKB, fs: proc.Default()}
}

// Name returns "rss_limit".
func (r *RSSLimit) Name() string { return "rss_limit" }

// Check returns an error when p's private memory is above r.LimitKB.
func (r *RSSLimit) Check(ctx context.Context, p Process) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
	}
	m, err := r.fs.Memory(p.PID)
	if err != nil {
		return fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
	}
	if r.LimitKB <= 0 || m.PrivateKB <= r.LimitKB {
		return nil
	}
	if p.StartTicks != 0 {
		st, err := r.fs.Stat(p.PID)
		if err != nil {
			return fmt.Errorf("%w: rss_limit: %w", ErrMonitorUnavailable, err)
		}
		if st.StartTicks != p.StartTicks || st.Zombie() {
			return fmt.Errorf("%w: rss_limit: pid %d is no longer the program's process", ErrMonitorUnavailable, p.PID)
		}
	}
	return fmt.Errorf("private memory %d kB above rss_limit %d kB", m.PrivateKB, r.LimitKB)
}
