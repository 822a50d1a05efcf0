package statedir

import (
	"errors"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Manual is the last operation done by hand on a program (usrsvc, an
// embedder's Manager): "stop" means stopped by hand, not to be restarted
// by usrsvcd; "start" and "restart" reset usrsvcd's restart count.
type Manual struct {
	Version int       `json:"version"`
	Program string    `json:"program"`
	Action  string    `json:"action"` // "stop", "start" or "restart"
	Time    time.Time `json:"time"`
}

func (r *Manual) version() int { return r.Version }

// ManualPath is the path of name's manual record.
func (d Dir) ManualPath(name string) string { return d.Path(ProgramsDir, name+ManualSuffix) }

// SetManual records a manual operation on name.
func (d Dir) SetManual(name, action string, t time.Time) error {
	if _, err := d.Ensure(ProgramsDir); err != nil {
		return err
	}
	return writeJSON(d.ManualPath(name), Manual{Version: Version, Program: name, Action: action, Time: t})
}

// Manual reads the last manual operation on name; nil when there is none.
func (d Dir) Manual(name string) (*Manual, error) {
	var r Manual
	if err := readJSON(d.ManualPath(name), &r); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &r, nil
}

// StoppedByHand reports whether name was stopped by hand and not started
// by hand since, and when.
func (d Dir) StoppedByHand(name string) (bool, time.Time, error) {
	r, err := d.Manual(name)
	if err != nil || r == nil {
		return false, time.Time{}, err
	}
	return r.Action == "stop", r.Time, nil
}

// A start's marker, programs/NAME.starting, says that a start is in its
// success window: the starter creates it just before it launches the
// program, and removes it when the launch is over. It means something only
// while the program's lock is held (by the start, or by its launcher when
// the starter is gone: Ctrl-C, kill -9), so whoever takes the lock removes
// one left behind. A stop by hand that finds the lock held and this marker
// cancels the start (see usrsvc's lockForStop). It is an empty file: its
// creation needs no free space, so a start on a full disk can be cancelled
// too (and it takes no page from the others there).

// StartingPath is the path of name's start marker.
func (d Dir) StartingPath(name string) string { return d.Path(ProgramsDir, name+StartingSuffix) }

// SetStarting creates name's start marker.
func (d Dir) SetStarting(name string) error {
	if _, err := d.Ensure(ProgramsDir); err != nil {
		return err
	}
	f, err := os.OpenFile(d.StartingPath(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return FileError("cannot create the start marker", d.StartingPath(name), err)
	}
	return f.Close()
}

// Starting reports whether name has a start marker.
func (d Dir) Starting(name string) (bool, error) {
	fi, err := os.Lstat(d.StartingPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, FileError("cannot read the start marker", d.StartingPath(name), err)
	}
	return fi.Mode().IsRegular(), nil
}

// ClearStarting removes name's start marker, if any.
func (d Dir) ClearStarting(name string) {
	os.Remove(d.StartingPath(name))
}

// Exit is how a process ended, as a record holds it.
type Exit struct {
	Time   time.Time
	Exited bool // true: Status is the exit status; false: killed by Signal
	Status int
	Signal int
	Known  bool // false when the status could not be read
}

// Record is what usrsvcd records about a program.
type Record struct {
	Version  int    `json:"version"`
	Program  string `json:"program"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	LastExit *Exit  `json:"last_exit,omitempty"`
	PID      int    `json:"pid,omitempty"`
	// StartTicks is PID's start time (field 22 of /proc/PID/stat): with
	// the pid, the process's identity. Pidfile is the program's pidfile
	// when usrsvc writes it (autopid). A program removed from the
	// configuration that still runs keeps its record, with state
	// "removed", so that usrsvc status lists it.
	StartTicks uint64 `json:"start_ticks,omitempty"`
	Pidfile    string `json:"pidfile,omitempty"`
	// NextTry is when a program in backoff is tried again.
	NextTry time.Time `json:"next_try,omitzero"`
	Updated time.Time `json:"updated"`
	Reason  string    `json:"reason,omitempty"`
	// Health is "healthy", "unhealthy" or "unknown" for a program with
	// health checks ("" without); HealthReason and HealthAt tell the last
	// failed check, HealthFailures how many failed in a row.
	Health         string    `json:"health,omitempty"`
	HealthReason   string    `json:"health_reason,omitempty"`
	HealthAt       time.Time `json:"health_at,omitzero"`
	HealthFailures int       `json:"health_failures,omitempty"`
	// Checks are the health checks' counters since the daemon started
	// watching this process, by check (http_check, tcp_check, exec_check).
	Checks map[string]*CheckStats `json:"checks,omitempty"`
	// ManualSeen is the time of the last manual operation the daemon
	// applied, so a new daemon does not apply an old one again.
	ManualSeen time.Time `json:"manual_seen,omitzero"`
}

func (r *Record) version() int { return r.Version }

// RecordPath is the path of name's daemon record.
func (d Dir) RecordPath(name string) string { return d.Path(ProgramsDir, name+DaemonSuffix) }

// Record reads usrsvcd's record of name; nil when there is none.
func (d Dir) Record(name string) (*Record, error) {
	var r Record
	if err := readJSON(d.RecordPath(name), &r); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &r, nil
}

// WriteRecord writes r (its Version set).
func (d Dir) WriteRecord(r *Record) error {
	if _, err := d.Ensure(ProgramsDir); err != nil {
		return err
	}
	r.Version = Version
	return writeJSON(d.RecordPath(r.Program), r)
}

// RemoveRecords removes name's daemon record (a program removed from
// the configuration, which no longer runs). Its manual record stays: a
// manual stop outlives the program's absence from the configuration.
func (d Dir) RemoveRecords(name string) {
	os.Remove(d.RecordPath(name))
}

// RecordNames lists the programs that have a daemon record, in name order.
func (d Dir) RecordNames() ([]string, error) {
	entries, err := os.ReadDir(d.Path(ProgramsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, FileError("cannot list", d.Path(ProgramsDir), err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), DaemonSuffix); ok && name != "" && !strings.HasPrefix(name, ".") {
			names = append(names, name)
		}
	}
	return names, nil
}

// ReloadAck is the acknowledgement of the last reload that a usrsvcd (or
// any Manager.Run) applied or refused.
type ReloadAck struct {
	Version    int       `json:"version"`
	Generation int64     `json:"generation"` // counts reloads since the state directory was created; 0: none yet
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`                 // applied; false: refused, the old configuration stays
	Message    string    `json:"message"`            // a summary ("5 programs (1 added, ...)") or why it was refused
	Problems   []string  `json:"problems,omitempty"` // every problem of a refused configuration, file:line first
}

func (a *ReloadAck) version() int { return a.Version }

// ReloadAck reads the last reload acknowledgement (zero when none).
func (d Dir) ReloadAck() (ReloadAck, error) {
	var a ReloadAck
	err := readJSON(d.Path(ReloadAckFile), &a)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	return a, nil
}

// WriteReloadAck writes a (its Version set).
func (d Dir) WriteReloadAck(a ReloadAck) error {
	a.Version = Version
	return writeJSON(d.Path(ReloadAckFile), a)
}

// CheckBuckets are the upper bounds, in seconds, of the durations a
// CheckStats counts (as a Prometheus histogram's buckets).
var CheckBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// CheckStats counts the runs of one health check.
type CheckStats struct {
	Runs     uint64   `json:"runs"`
	Failures uint64   `json:"failures"`
	Seconds  float64  `json:"seconds"` // the sum of their durations
	Buckets  []uint64 `json:"buckets"` // runs at most CheckBuckets[i] long (cumulative)
}

// Add counts a run that took d, failed or not.
func (c *CheckStats) Add(d time.Duration, failed bool) {
	if len(c.Buckets) != len(CheckBuckets) {
		c.Buckets = make([]uint64, len(CheckBuckets))
	}
	c.Runs++
	if failed {
		c.Failures++
	}
	s := d.Seconds()
	c.Seconds += s
	for i, b := range CheckBuckets {
		if s <= b {
			c.Buckets[i]++
		}
	}
}
