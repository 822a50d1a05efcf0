package usrsvc

import (
	"context"
	"errors"
	"fmt"
)

// Monitor checks a running program beyond "is it running". usrsvcd runs a
// program's monitors every monitor_interval once the program has been up for
// monitor_after. When Check returns an error, usrsvcd restarts the program
// (stop + start under its lock) and alerts with the error as the reason —
// unless the error wraps [ErrMonitorUnavailable]: that is the monitor's own
// failure (it could not check), which is logged and never a restart.
//
// Check is called off the supervising loop with a context bounded by a
// timeout; it must return when ctx is done.
type Monitor interface {
	// Name is a short name for logs and alerts, such as "activityfile".
	Name() string
	// Check inspects p. nil means all is well; an error is the reason to
	// restart, or wraps ErrMonitorUnavailable when the check itself failed.
	Check(ctx context.Context, p Process) error
}

// ErrMonitorUnavailable is wrapped by a Monitor's error when the monitor
// could not check (a file it cannot read, a timeout): logged, not a restart.
var ErrMonitorUnavailable = errors.New("monitor could not check")

// Restart returns the error a Monitor's Check returns to have the program
// restarted: the reason, as given.
func Restart(reason string) error { return errors.New(reason) }

// Unavailable returns an error wrapping ErrMonitorUnavailable: the monitor
// could not check (logged, not a restart).
func Unavailable(reason string) error { return fmt.Errorf("%w: %s", ErrMonitorUnavailable, reason) }
