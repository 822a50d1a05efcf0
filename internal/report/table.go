package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc"
)

// A column of the status table: its header and how a result fills it.
// Adding a column is one entry here.
type column struct {
	header string
	cell   func(r usrsvc.Result, now time.Time) string
}

var columns = []column{
	{"NAME", func(r usrsvc.Result, _ time.Time) string { return r.Program }},
	{"STATE", func(r usrsvc.Result, _ time.Time) string { return State(r) }},
	{"PID", func(r usrsvc.Result, _ time.Time) string {
		if p := process(r); p != nil {
			return strconv.Itoa(p.PID)
		}
		return "-"
	}},
	{"UPTIME", func(r usrsvc.Result, now time.Time) string {
		if p := process(r); p != nil && !p.Started.IsZero() {
			return Duration(now.Sub(p.Started))
		}
		return "-"
	}},
	{"RESTARTS", func(r usrsvc.Result, _ time.Time) string {
		if st := r.Status; st != nil && st.Recorded {
			return strconv.Itoa(st.Restarts)
		}
		return "-"
	}},
	{"HEALTH", func(r usrsvc.Result, _ time.Time) string { return health(r) }},
	{"LAST EXIT", func(r usrsvc.Result, now time.Time) string {
		if st := r.Status; st != nil && st.LastExit != nil {
			return LastExitText(st.LastExit, now)
		}
		return "-"
	}},
}

// WriteTable writes results as a table, one aligned line per program
// under a header line, like supervisorctl status: name, state, pid,
// uptime, automatic restarts, health, last exit. now is the time uptimes
// and "ago"s are counted to.
func WriteTable(w io.Writer, results []usrsvc.Result, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := make([]string, len(columns))
	for i, c := range columns {
		line[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(line, "\t"))
	for _, r := range results {
		for i, c := range columns {
			line[i] = c.cell(r, now)
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

func process(r usrsvc.Result) *usrsvc.Process {
	if st := r.Status; st != nil && st.Running {
		return st.Process
	}
	return nil
}

// health is the HEALTH column: healthy, unhealthy or unknown for a
// program with health checks that usrsvcd supervises, "-" otherwise.
func health(r usrsvc.Result) string {
	if r.Status == nil || r.Status.Health == "" {
		return "-"
	}
	return r.Status.Health
}

// State is a program's state in one word: usrsvcd's record (running,
// starting, backoff, gave-up, stopped-by-hand, stopped) where it agrees
// with what was found, else running or stopped, disabled for a stopped
// program with enabled = false, error when the operation failed.
func State(r usrsvc.Result) string {
	st := r.Status
	switch {
	case r.Err != nil:
		return "error"
	case st == nil:
		return "unknown"
	case st.Running && (st.State == "" || st.State == usrsvc.StateStopped || st.State == usrsvc.StateGaveUp ||
		st.State == usrsvc.StateStoppedByHand || st.State == usrsvc.StateBackoff):
		return "running" // started by other means since the record
	case st.Running:
		return string(st.State)
	case st.Disabled:
		return "disabled"
	case st.State == "" || st.State == usrsvc.StateRunning:
		return "stopped" // no record, or usrsvcd has not seen the exit yet
	default:
		return string(st.State)
	}
}

// LastExitText is how a program last ended, with how long ago: "exit 3, 2h
// ago", "SIGKILL, 5m ago", "unknown, 1m ago".
func LastExitText(e *usrsvc.ExitStatus, now time.Time) string {
	var how string
	switch {
	case !e.Known:
		how = "unknown"
	case e.Exited:
		how = "exit " + strconv.Itoa(e.Status)
	default:
		how = unix.SignalName(unix.Signal(e.Signal))
		if how == "" {
			how = "signal " + strconv.Itoa(e.Signal)
		}
	}
	if e.Time.IsZero() {
		return how
	}
	return how + ", " + Duration(now.Sub(e.Time)) + " ago"
}

// Duration writes d in its two largest units, as a table cell: 42s, 4m05s,
// 3h04m, 2d03h.
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
	}
}
