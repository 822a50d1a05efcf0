package usrsvc

import (
	"errors"
	"math"
	"strings"
	"time"
)

// Status is what one operation found or left: whether the program runs, its
// process, and what usrsvcd recorded about it.
type Status struct {
	Program  string
	Running  bool
	Process  *Process // nil when not running
	Message  string   // "started", "already running", "stopped", "not running", ...
	Warnings []string // stale pidfile removed, several matches, ...
	// StoppedByHand is true while the program is stopped with usrsvc stop:
	// usrsvcd does not start it until a manual start or restart.
	StoppedByHand bool
	// Disabled is true for a program with enabled = false.
	Disabled bool
	// Daemon is usrsvcd's record of the program (state, restarts, last
	// exit); nil when usrsvcd has recorded nothing.
	Daemon *DaemonRecord
	// Usage is the running process's CPU and memory use (status only).
	Usage *Usage
}

// Usage is what a running program uses, read from /proc by status.
type Usage struct {
	// CPUPercent is the CPU time used since the process started, as a
	// percentage of one core over its lifetime.
	CPUPercent float64
	// CPUTime is the CPU time the process used, user and system, to the
	// clock tick.
	CPUTime time.Duration
	// RSSKB is the resident set size (shared pages included), in kB.
	RSSKB int64
	// PrivateKB is the private resident memory (Private_Clean +
	// Private_Dirty, what rss_limit measures), in kB; 0 when not measured
	// (status all skips it: smaps_rollup costs ~0.3 ms a process).
	PrivateKB int64
}

// Result is one program's outcome in an "all" operation.
type Result struct {
	Program string
	Action  string
	Status  *Status
	Err     error
	Time    time.Time
}

// Code is the return code of this result: CodeOf(Err), and for status
// CodeGeneralFailure when the program does not run.
func (r Result) Code() Code {
	if r.Err != nil {
		return CodeOf(r.Err)
	}
	if r.Action == ActionStatus && (r.Status == nil || !r.Status.Running) {
		return CodeGeneralFailure
	}
	return CodeSuccess
}

// Record is the JSON form of a Result: what `usrsvc --json` prints, one
// object per program per line (SPEC §4). Process fields are absent, not
// null, when the program does not run; daemon fields are present only
// where usrsvcd recorded them.
type Record struct {
	Time       string    `json:"time"`
	Program    string    `json:"program"`
	Action     string    `json:"action"`
	Code       int       `json:"code"`
	CodeName   string    `json:"code_name"`
	Running    bool      `json:"running"`
	PID        int       `json:"pid,omitempty"`
	StartedAt  string    `json:"started_at,omitempty"`
	Cmdline    string    `json:"cmdline,omitempty"`
	Executable string    `json:"executable,omitempty"`
	Args       []string  `json:"args,omitempty"`
	Message    string    `json:"message"`
	Warnings   []string  `json:"warnings,omitempty"`
	State      string    `json:"state,omitempty"`
	Restarts   *int      `json:"restarts,omitempty"`
	LastExit   *LastExit `json:"last_exit,omitempty"`
	Stderr     []string  `json:"stderr,omitempty"`
	CPUPercent *float64  `json:"cpu_percent,omitempty"`
	RSSKB      int64     `json:"rss_kb,omitempty"`
	PrivateKB  int64     `json:"private_kb,omitempty"`
}

// LastExit is the JSON form of how a program last ended, as usrsvcd saw it.
type LastExit struct {
	Time   string `json:"time"`
	Status *int   `json:"status,omitempty"`
	Signal *int   `json:"signal,omitempty"`
}

// Record returns r in the JSON form of SPEC §4.
func (r Result) Record() Record {
	code := r.Code()
	rec := Record{
		Time:     r.Time.Format(time.RFC3339),
		Program:  r.Program,
		Action:   r.Action,
		Code:     int(code),
		CodeName: code.String(),
	}
	if st := r.Status; st != nil {
		rec.Message = st.Message
		rec.Warnings = st.Warnings
		if st.Running && st.Process != nil {
			p := st.Process
			rec.Running = true
			rec.PID = p.PID
			if !p.Started.IsZero() {
				rec.StartedAt = p.Started.Format(time.RFC3339)
			}
			rec.Cmdline = p.Title
			rec.Executable = p.Executable
			rec.Args = p.Args
			if u := st.Usage; u != nil {
				cpu := math.Round(u.CPUPercent*100) / 100
				rec.CPUPercent = &cpu
				rec.RSSKB, rec.PrivateKB = u.RSSKB, u.PrivateKB
			}
		}
		rec.State = st.State()
		if d := st.Daemon; d != nil {
			n := d.Restarts
			rec.Restarts = &n
			if e := d.LastExit; e != nil {
				le := &LastExit{Time: e.Time.Format(time.RFC3339)}
				if e.Known && e.Exited {
					s := e.Status
					le.Status = &s
				} else if e.Known {
					s := e.Signal
					le.Signal = &s
				}
				rec.LastExit = le
			}
		}
	}
	if r.Err != nil {
		msg := r.Err.Error()
		if pe, ok := r.Err.(*ProgramError); ok {
			msg = pe.Err.Error()
		}
		if rec.Message == "" || !strings.Contains(msg, rec.Message) {
			rec.Message = msg
		}
		var le *LaunchError
		if errors.As(r.Err, &le) {
			rec.Stderr = le.Stderr
		}
	}
	return rec
}

// State is the program's supervision state for display: usrsvcd's record
// when there is one, "stopped-by-hand" for a manual stop; "" when unknown.
func (st *Status) State() string {
	switch {
	case st.StoppedByHand && !st.Running:
		return "stopped-by-hand"
	case st.Daemon != nil && st.Daemon.State != "":
		return st.Daemon.State
	}
	return ""
}
