package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	results := []usrsvc.Result{
		{Program: "api", Action: usrsvc.ActionStatus, Status: &usrsvc.Status{Running: true,
			Process: &usrsvc.Process{PID: 4242, Started: now.Add(-(3*time.Hour + 4*time.Minute))},
			State:   usrsvc.StateRunning, Recorded: true, Restarts: 2,
			LastExit: &usrsvc.ExitStatus{Time: now.Add(-3 * time.Hour), Known: true, Signal: 9}}},
		{Program: "cron-like", Action: usrsvc.ActionStatus, Status: &usrsvc.Status{
			State: usrsvc.StateGaveUp, Recorded: true, Restarts: 5,
			LastExit: &usrsvc.ExitStatus{Time: now.Add(-42 * time.Second), Known: true, Exited: true, Status: 3}}},
		{Program: "off", Action: usrsvc.ActionStatus, Status: &usrsvc.Status{Disabled: true}},
		{Program: "broken", Action: usrsvc.ActionStatus, Err: errors.New("bad config")},
	}
	var b strings.Builder
	require.NoError(t, WriteTable(&b, results, now))
	assert.Equal(t, ""+
		"NAME       STATE     PID   UPTIME  RESTARTS  HEALTH  LAST EXIT\n"+
		"api        running   4242  3h04m   2         -       SIGKILL, 3h00m ago\n"+
		"cron-like  gave-up   -     -       5         -       exit 3, 42s ago\n"+
		"off        disabled  -     -       -         -       -\n"+
		"broken     error     -     -       -         -       -\n", b.String())
}

func TestState(t *testing.T) {
	t.Parallel()
	st := func(running bool, s usrsvc.State) usrsvc.Result {
		return usrsvc.Result{Status: &usrsvc.Status{Running: running, Process: &usrsvc.Process{PID: 1}, State: s}}
	}
	assert.Equal(t, "running", State(st(true, "")))
	assert.Equal(t, "running", State(st(true, usrsvc.StateStoppedByHand)), "started by other means since")
	assert.Equal(t, "starting", State(st(true, usrsvc.StateStarting)))
	assert.Equal(t, "stopped", State(st(false, "")))
	assert.Equal(t, "stopped", State(st(false, usrsvc.StateRunning)), "usrsvcd has not seen the exit yet")
	assert.Equal(t, "backoff", State(st(false, usrsvc.StateBackoff)))
	assert.Equal(t, "stopped-by-hand", State(st(false, usrsvc.StateStoppedByHand)))
	assert.Equal(t, "unknown", State(usrsvc.Result{}))
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s",
		3*time.Hour + 4*time.Minute + 5*time.Second: "3h04m", 50*time.Hour + 10*time.Minute: "2d02h",
	} {
		assert.Equal(t, want, Duration(d), d.String())
	}
	assert.Equal(t, "unknown", LastExitText(&usrsvc.ExitStatus{}, time.Now()))
	assert.Equal(t, "signal 99", LastExitText(&usrsvc.ExitStatus{Known: true, Signal: 99}, time.Time{}))
}
