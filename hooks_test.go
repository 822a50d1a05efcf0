package usrsvc

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A hook gets the event as a JSON line on its stdin, and never delays the
// restart: with a hook that runs for a minute attached, a program killed
// with SIGKILL is back at once. A hook past its timeout is killed with its
// process group, and logged as hook-failed.
func TestHookOnExit(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	got := e.path("hook.json")
	slow := e.path("slow.pid")
	h := testproc.New(t, "sleep")
	e.addProgram("web", h.CommandLine(), "[[Hook]]", "events = exited, restarted",
		`command = /bin/sh -c 'cat >> `+got+`; echo $$ > `+slow+`.$USRSVC_EVENT; exec sleep 60'`, "timeout = 2")
	var evs events
	var logs testproc.Buffer
	m := e.manager(recorder(&evs), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	runLoop(t, m)
	first := evs.wait(t, EventStarted, "web", 1)[0].PID
	waitRecordedRunning(t, m, "web", first, "running")
	killed := time.Now()
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	var back time.Duration
	waitFor(t, 15*time.Second, func() bool {
		pids := h.PIDs()
		if len(pids) == 1 && pids[0] != first {
			back = time.Since(killed)
			return true
		}
		return false
	}, "back after the kill")
	assert.Less(t, back, 5*time.Second, "the hook (a minute long) does not delay the restart")
	var rec map[string]any
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(got)
		for _, line := range bytes.Split(data, []byte("\n")) {
			if json.Unmarshal(line, &rec) == nil && rec["event"] == "exited" {
				return true
			}
		}
		return false
	}, "the hook's JSON of the exit")
	assert.Equal(t, "web", rec["program"])
	assert.Equal(t, "exited", rec["event"])
	assert.EqualValues(t, first, rec["pid"])
	assert.EqualValues(t, 9, rec["signal"])
	// Past its timeout (2 s) the hook is killed, with what it started.
	waitFor(t, 15*time.Second, func() bool { return strings.Contains(logs.String(), "hook-failed") }, "hook-failed logged")
	assert.Contains(t, logs.String(), "ran longer than its timeout (2s): killed with its process group")
	data, err := os.ReadFile(slow + ".exited")
	require.NoError(t, err)
	pid := strings.TrimSpace(string(data))
	waitFor(t, 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + pid)
		return err != nil
	}, "the hook's process gone")
}
