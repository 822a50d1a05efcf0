package web

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha", "beta"}, Options{})
	e.runDaemon()
	var pid int
	testproc.WaitFor(t, 20*time.Second, func() bool {
		var o overview
		e.getJSON("/api/v1/programs", &o)
		pid = o.Programs[0].PID
		return o.Programs[0].State == stateRunning && o.Programs[1].State == stateRunning
	}, "both programs started by the loop")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	testproc.WaitFor(t, 20*time.Second, func() bool {
		var p programView
		e.getJSON("/api/v1/programs/alpha", &p)
		return p.State == stateRunning && p.PID != pid && p.Restarts == 1
	}, "alpha restarted by the loop")

	w := do(e.h, "GET", "/metrics", nil)
	require.Equal(t, 200, w.Code)
	body := w.Body.String()
	for _, want := range []string{
		`usrsvc_program_up{program="alpha"} 1`,
		`usrsvc_program_up{program="beta"} 1`,
		`usrsvc_program_state{program="alpha",state="running"} 1`,
		`usrsvc_program_enabled{program="alpha"} 1`,
		`usrsvc_program_restarts_total{program="alpha"} 1`,
		`usrsvc_program_restarts_total{program="beta"} 0`,
		`usrsvc_program_last_exit_code{program="alpha"} 137`,
		"# TYPE usrsvc_program_restarts_total counter",
		"# TYPE usrsvc_program_cpu_seconds_total counter",
		"usrsvc_daemon_up 1",
		"process_resident_memory_bytes", // usrsvcweb's own
	} {
		assert.Contains(t, body, want)
	}
	for _, re := range []string{
		`usrsvc_program_start_time_seconds\{program="alpha"\} [0-9.e+]+`,
		`usrsvc_program_cpu_seconds_total\{program="beta"\} [0-9.e+-]+`,
		`usrsvc_program_resident_memory_bytes\{program="alpha"\} [1-9][0-9.e+]*`,
		`usrsvc_program_private_memory_bytes\{program="alpha"\} [1-9][0-9.e+]*`,
		`usrsvc_daemon_start_time_seconds [1-9][0-9.e+]*`,
	} {
		assert.Regexp(t, regexp.MustCompile(re), body)
	}
	assert.NotContains(t, body, "usrsvc_daemon_last_reread_success", "no reread yet")
	assert.NotContains(t, body, `usrsvc_program_state{program="alpha",state="exited"}`, "only the current state")
	promtoolCheck(t, body)
}

func TestMetricsStoppedProgramAndNoDaemon(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	body := do(e.h, "GET", "/metrics", nil).Body.String()
	assert.Contains(t, body, `usrsvc_program_up{program="alpha"} 0`)
	assert.Contains(t, body, `usrsvc_program_state{program="alpha",state="stopped"} 1`)
	assert.Contains(t, body, "usrsvc_daemon_up 0")
	assert.NotContains(t, body, `usrsvc_program_start_time_seconds{program="alpha"}`, "no process, no start time")
	assert.NotContains(t, body, "usrsvc_daemon_start_time_seconds ")
	promtoolCheck(t, body)
}

// promtoolCheck runs Prometheus's own linter on a scrape. Under CI it must
// be installed (.ci/run installs the Debian package prometheus).
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	path := promtoolPath(t)
	if path == "" {
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "promtool check metrics:\n%s", out.String())
	assert.Empty(t, strings.TrimSpace(out.String()), "promtool found problems")
}

// The first scrape after usrsvcd reread its configuration lists the
// programs it put in force, not the old ones.
func TestMetricsAfterDaemonReread(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	loop := e.manager()
	e.runDaemonWith(loop)
	w := do(e.h, "GET", "/metrics", nil) // a reading: the acknowledgement as it is now
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), `program="omega"`)
	text, err := os.ReadFile(e.cfg.Path)
	require.NoError(t, err)
	added := strings.ReplaceAll(string(text[strings.Index(string(text), "[Program:alpha]"):]), "alpha", "omega")
	require.NoError(t, os.WriteFile(e.cfg.Path, append(text, "\n"+added...), 0o600))
	require.NoError(t, loop.Reread(ctxFor(t)))
	w = do(e.h, "GET", "/metrics", nil)
	assert.Contains(t, w.Body.String(), `usrsvc_program_enabled{program="omega"} 1`, "the first scrape after the reread")
}
