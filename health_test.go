package usrsvc

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// freePort returns a TCP port of 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// An HTTP server that stops answering — stopped with SIGSTOP, or holding
// the connection without a reply — is restarted after check_failures
// failed checks in a row, each a timeout, with the reason in the event.
func TestHealthHTTPCheckRestartsHungServer(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"SIGSTOP", "never replies"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			port := freePort(t)
			hang := e.path("hang")
			h := testproc.New(t, "http-server", "--listen=127.0.0.1:"+port, "--hang-file="+hang)
			e.addProgram("web", h.CommandLine(), "success_seconds = 0.3", "[[Monitor]]", "monitor_after = 0",
				"monitor_interval = 0.4", "check_timeout = 0.2", "check_failures = 2",
				"http_check = http://127.0.0.1:"+port+"/healthz")
			var evs events
			m := e.manager(recorder(&evs))
			runLoop(t, m)
			first := evs.wait(t, EventStarted, "web", 1)[0].PID
			waitFor(t, 10*time.Second, func() bool {
				st, err := m.Do(ctxT(t), ActionStatus, "web")
				return err == nil && st.Health == "healthy"
			}, "healthy once a check passed")

			if how == "SIGSTOP" {
				require.NoError(t, syscall.Kill(first, syscall.SIGSTOP))
				t.Cleanup(func() { syscall.Kill(first, syscall.SIGCONT) })
			} else {
				require.NoError(t, os.WriteFile(hang, nil, 0o600))
			}
			failed := evs.wait(t, EventHealthFailed, "web", 1)[0]
			assert.Equal(t, "http_check", failed.Monitor)
			assert.Contains(t, failed.Reason, "http_check http://127.0.0.1:"+port+"/healthz: timeout after 200ms (2 in a row)")
			if how != "SIGSTOP" {
				require.NoError(t, os.Remove(hang))
			}
			waitFor(t, 15*time.Second, func() bool {
				pids := h.PIDs()
				return len(pids) == 1 && pids[0] != first
			}, "restarted by its health check")
			st := inspect(t, m, "web")
			assert.Equal(t, 1, st.restarts, "a health restart counts for maxrestarts")
		})
	}
}

// A tcp_check on a port nobody listens on: unhealthy, with check_action =
// alert only alerted (no restart), and healthy again once it listens.
func TestHealthTCPCheckAlertOnly(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	h := testproc.New(t, "sleep")
	e.addProgram("db", h.CommandLine(), "success_seconds = 0.2", "[[Monitor]]", "monitor_after = 0",
		"monitor_interval = 0.3", "check_failures = 2", "check_action = alert", "tcp_check = 127.0.0.1:"+port)
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	pid := evs.wait(t, EventStarted, "db", 1)[0].PID
	failed := evs.wait(t, EventHealthFailed, "db", 1)[0]
	assert.Contains(t, failed.Reason, "tcp_check 127.0.0.1:"+port+": connection refused (2 in a row)")
	st, err := m.Do(ctxT(t), ActionStatus, "db")
	require.NoError(t, err)
	assert.Equal(t, "unhealthy", st.Health)
	assert.Contains(t, st.HealthReason, "connection refused")
	assert.GreaterOrEqual(t, st.HealthFailures, 2)
	assert.Equal(t, []int{pid}, h.PIDs(), "check_action = alert: not restarted")

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	require.NoError(t, err)
	defer ln.Close()
	evs.wait(t, EventHealthRecovered, "db", 1)
	st, err = m.Do(ctxT(t), ActionStatus, "db")
	require.NoError(t, err)
	assert.Equal(t, "healthy", st.Health)
	assert.Len(t, evs.list(EventHealthFailed, "db"), 1, "one event for one bout of ill health")
}

// An exec_check that starts failing: its exit status and first stderr
// line are the reason; it runs in the program's directory and environment.
func TestHealthExecCheck(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	flag := e.path("sick")
	h := testproc.New(t, "sleep")
	e.addProgram("app", h.CommandLine(), "success_seconds = 0.2", "directory = "+e.dir,
		"[[Env]]", "SICK_FILE = sick",
		"[[Monitor]]", "monitor_after = 0", "monitor_interval = 0.3", "check_failures = 1",
		`exec_check = /bin/sh -c 'if test -e "$SICK_FILE"; then echo "database gone" >&2; exit 3; fi'`)
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	first := evs.wait(t, EventStarted, "app", 1)[0].PID
	waitFor(t, 10*time.Second, func() bool {
		st, err := m.Do(ctxT(t), ActionStatus, "app")
		return err == nil && st.Health == "healthy"
	}, "healthy")
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	failed := evs.wait(t, EventHealthFailed, "app", 1)[0]
	assert.Contains(t, failed.Reason, "exit status 3: database gone (1 in a row)")
	require.NoError(t, os.Remove(flag))
	waitFor(t, 15*time.Second, func() bool {
		pids := h.PIDs()
		return len(pids) == 1 && pids[0] != first
	}, "restarted")
}
