// Package report is the JSON form of an operation's outcome: what
// `usrsvc --json` prints, one object per program per line, and what
// usrsvcweb's API returns. Its field names and presence rules are a stable
// interface for scripts.
package report

import (
	"math"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// Record is the JSON form of a Result: what `usrsvc --json` prints, one
// object per program per line. Process fields are absent, not
// null, when the program does not run; daemon fields are present only
// where usrsvcd recorded them.
type Record struct {
	Time       string   `json:"time"`
	Program    string   `json:"program"`
	Action     string   `json:"action"`
	Code       int      `json:"code"`
	CodeName   string   `json:"code_name"`
	Running    bool     `json:"running"`
	PID        int      `json:"pid,omitempty"`
	StartedAt  string   `json:"started_at,omitempty"`
	Cmdline    string   `json:"cmdline,omitempty"`
	Executable string   `json:"executable,omitempty"`
	Args       []string `json:"args,omitempty"`
	Message    string   `json:"message"`
	Warnings   []string `json:"warnings,omitempty"`
	State      string   `json:"state,omitempty"`
	// Health is healthy, unhealthy or unknown for a program with health
	// checks that usrsvcd supervises; HealthReason is its last failed
	// check, HealthFailures how many failed in a row.
	Health         string    `json:"health,omitempty"`
	HealthReason   string    `json:"health_reason,omitempty"`
	HealthFailures int       `json:"health_failures,omitempty"`
	NextTry        string    `json:"next_try,omitempty"` // RFC3339: when usrsvcd tries again a program in backoff
	Restarts       *int      `json:"restarts,omitempty"`
	LastExit       *LastExit `json:"last_exit,omitempty"`
	Stderr         []string  `json:"stderr,omitempty"`
	CPUPercent     *float64  `json:"cpu_percent,omitempty"`
	RSSKB          int64     `json:"rss_kb,omitempty"`
	PrivateKB      int64     `json:"private_kb,omitempty"`
}

// LastExit is the JSON form of how a program last ended, as usrsvcd saw it.
type LastExit struct {
	Time   string `json:"time"`
	Status *int   `json:"status,omitempty"`
	Signal *int   `json:"signal,omitempty"`
}

// Code is the return code of r: the code of its error, and for status
// GeneralFailure when the program does not run.
func Code(r usrsvc.Result) exitcode.Code {
	if r.Err != nil {
		return exitcode.Of(r.Err)
	}
	if r.Action == usrsvc.ActionStatus && (r.Status == nil || !r.Status.Running) {
		return exitcode.GeneralFailure
	}
	return exitcode.Success
}

// FromResult returns r in its JSON form.
func FromResult(r usrsvc.Result) Record {
	code := Code(r)
	rec := Record{
		Time:     r.Time.Format(time.RFC3339),
		Program:  r.Program,
		Action:   string(r.Action),
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
			cpu := math.Round(st.CPUPercent*100) / 100
			rec.CPUPercent = &cpu
			rec.RSSKB, rec.PrivateKB = st.RSSKB, st.PrivateKB
		}
		rec.State = string(st.State)
		rec.Health, rec.HealthReason, rec.HealthFailures = st.Health, st.HealthReason, st.HealthFailures
		if !st.NextTry.IsZero() && st.State == usrsvc.StateBackoff {
			rec.NextTry = st.NextTry.Format(time.RFC3339)
		}
		if st.Recorded {
			n := st.Restarts
			rec.Restarts = &n
		}
		if e := st.LastExit; e != nil {
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
	if r.Err != nil {
		msg := r.Err.Error()
		if pe, ok := r.Err.(*usrsvc.ProgramError); ok {
			msg = pe.Err.Error()
		}
		if rec.Message == "" || !strings.Contains(msg, rec.Message) {
			rec.Message = msg
		}
		if st := r.Status; st != nil {
			rec.Stderr = st.Stderr
		}
	}
	return rec
}
