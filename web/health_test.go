package web

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// newEnvWith is a uiEnv over a config of the given sections (DIR in them
// is the test's directory).
func newEnvWith(t testing.TB, opts Options, sections ...string) *uiEnv {
	t.Helper()
	e := &uiEnv{t: t, dir: t.TempDir()}
	text := fmt.Sprintf("[Main]\npidfile = %[1]s/usrsvcd.pid\nstate_dir = %[1]s/state\n", e.dir)
	for _, s := range sections {
		text += strings.ReplaceAll(s, "DIR", e.dir) + "\n"
	}
	require.NoError(t, os.WriteFile(e.path("usrsvc.cfg"), []byte(text), 0o600))
	cfg, err := usrsvc.LoadConfig(e.path("usrsvc.cfg"))
	require.NoError(t, err)
	e.cfg = cfg
	e.logs = &testproc.Buffer{}
	opts.Config = cfg
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	e.h, err = New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { e.h.Close() })
	return e
}

// unusedPort is a TCP port of 127.0.0.1 that nothing listens on now.
func unusedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// healthWorld is a program with an http_check on a real HTTP server whose
// answer a file decides, and a program without checks that can be
// reloaded (reload_signal = HUP: it writes a line at each SIGHUP).
type healthWorld struct {
	*uiEnv
	port, status, hups string
}

func newHealthWorld(t testing.TB, opts Options) *healthWorld {
	t.Helper()
	w := &healthWorld{port: unusedPort(t)}
	dir := t.TempDir()
	w.status, w.hups = filepath.Join(dir, "status"), filepath.Join(dir, "hups")
	srv := testproc.New(t, "http-server", "--listen=127.0.0.1:"+w.port, "--status-file="+w.status)
	hup := testproc.New(t, "on-hup", "--out="+w.hups)
	w.uiEnv = newEnvWith(t, opts,
		"[Program:api]\ncommand = "+srv.CommandLine()+"\nsuccess_seconds = 0.3\nstop_signal = INT\nstop_group = true\n"+
			"ready = tcp:127.0.0.1:"+w.port+"\nready_timeout = 20\n"+
			"[[Monitor]]\nmonitor_after = 0\nmonitor_interval = 0.3\ncheck_timeout = 0.2\ncheck_failures = 2\ncheck_action = alert\n"+
			"http_check = http://127.0.0.1:"+w.port+"/healthz",
		"[Program:hupper]\ncommand = "+hup.CommandLine()+"\nsuccess_seconds = 0.3\nreload_signal = HUP\ndepends_on = api")
	return w
}

// program reads one program through the API.
func (e *uiEnv) program(name string) programView {
	var p programView
	e.getJSON("/api/v1/programs/"+name, &p)
	return p
}

// config is the resolved configuration GET /api/v1/programs/NAME shows.
func (e *uiEnv) config(name string) map[string]string {
	var d struct {
		Config map[string]string `json:"config"`
	}
	e.getJSON("/api/v1/programs/"+name, &d)
	return d.Config
}

// Health in the JSON API and in /metrics (linted by promtool): healthy,
// then unhealthy with the reason, the failures counted and the checks'
// durations in a histogram.
func TestHealthAPIAndMetrics(t *testing.T) {
	t.Parallel()
	w := newHealthWorld(t, Options{})
	w.runDaemon()
	testproc.WaitFor(t, 30*time.Second, func() bool { return w.program("api").Health == healthHealthy }, "api healthy")
	p := w.program("api")
	assert.Empty(t, p.HealthReason)
	assert.Zero(t, p.HealthFailures)
	assert.Empty(t, w.program("hupper").Health, "no health without checks")
	assert.Contains(t, p.Monitors, "http_check http://127.0.0.1:"+w.port+"/healthz")

	body := do(w.h, "GET", "/metrics", nil).Body.String()
	assert.Contains(t, body, `usrsvc_program_healthy{program="api"} 1`)
	assert.NotContains(t, body, `usrsvc_program_healthy{program="hupper"}`, "absent without checks")
	assert.Contains(t, body, "# TYPE usrsvc_health_check_failures_total counter")
	assert.Contains(t, body, "# TYPE usrsvc_health_check_duration_seconds histogram")
	assert.Regexp(t, `usrsvc_health_check_duration_seconds_bucket\{check="http_check",program="api",le="\+Inf"\} [1-9]`, body)
	assert.Regexp(t, `usrsvc_health_check_duration_seconds_bucket\{check="http_check",program="api",le="10"\} [1-9]`, body)
	assert.Regexp(t, `usrsvc_health_check_duration_seconds_count\{check="http_check",program="api"\} [1-9]`, body)
	assert.Regexp(t, `usrsvc_health_check_duration_seconds_sum\{check="http_check",program="api"\} [0-9.e+-]+`, body)
	assert.NotContains(t, body, `program="hupper",check`)
	promtoolCheck(t, body)

	require.NoError(t, os.WriteFile(w.status, []byte("503"), 0o600))
	testproc.WaitFor(t, 30*time.Second, func() bool { return w.program("api").Health == healthUnhealthy }, "api unhealthy")
	p = w.program("api")
	assert.Regexp(t, regexp.MustCompile(`^http_check http://127\.0\.0\.1:`+w.port+`/healthz: status 503 \(\d+ in a row\)$`), p.HealthReason)
	assert.GreaterOrEqual(t, p.HealthFailures, 2)
	at, err := time.Parse(time.RFC3339, p.HealthAt)
	require.NoError(t, err, "health_at: %q", p.HealthAt)
	assert.WithinDuration(t, time.Now(), at, time.Minute)
	assert.True(t, p.Running, "check_action = alert: not restarted")

	body = do(w.h, "GET", "/metrics", nil).Body.String()
	assert.Contains(t, body, `usrsvc_program_healthy{program="api"} 0`)
	assert.Regexp(t, `usrsvc_health_check_failures_total\{check="http_check",program="api"\} ([2-9]|\d\d+)\n`, body)
	promtoolCheck(t, body)

	// The XML-RPC description too (supervisorctl status).
	v, err := rpc(t, w.h, "supervisor.getProcessInfo", "api")
	require.NoError(t, err)
	assert.Contains(t, v.(map[string]any)["description"], ", unhealthy: http_check http://127.0.0.1:"+w.port+"/healthz: status 503")
}

// Reload through the API and the page's form: the reload_signal reaches
// the process, the pid stays, the change is audited; refused cross-origin,
// read-only, and for a program without reload_signal.
func TestReloadAction(t *testing.T) {
	t.Parallel()
	w := newHealthWorld(t, Options{})
	hupper := w.program("hupper")
	assert.Equal(t, "HUP", hupper.ReloadSignal)
	var res actionResult
	assert.Equal(t, http.StatusOK, w.post("/api/v1/programs/hupper/start", &res), res.Message)
	assert.True(t, w.program("api").Running, "started first, and ready: hupper depends on it")
	pid := w.program("hupper").PID
	require.NotZero(t, pid)

	res = actionResult{}
	require.Equal(t, http.StatusOK, w.post("/api/v1/programs/hupper/reload", &res), res.Message)
	assert.True(t, res.OK)
	assert.Equal(t, "reload", res.Action)
	testproc.WaitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(w.hups)
		return strings.Count(string(data), fmt.Sprintf("hup %d\n", pid)) == 1
	}, "the process got SIGHUP")
	assert.Equal(t, pid, w.program("hupper").PID, "the same process")
	assert.Regexp(t, `level=INFO msg="web: reload" program=hupper peer=192\.0\.2\.7:4242`, w.logs.String())

	// The page's form: POST, then a redirect to the page with the outcome.
	form := strings.NewReader("action=reload&back=program")
	rr := do(w.h, "POST", "/program/hupper", form, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, rr.Code, rr.Body.String())
	assert.True(t, strings.HasPrefix(rr.Header().Get("Location"), "/program/hupper?flash="))
	testproc.WaitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(w.hups)
		return strings.Count(string(data), fmt.Sprintf("hup %d\n", pid)) == 2
	}, "the form's reload reached the process")

	// No reload_signal: refused, nothing sent.
	res = actionResult{}
	assert.Equal(t, http.StatusConflict, w.post("/api/v1/programs/api/reload", &res))
	assert.False(t, res.OK)
	assert.Contains(t, res.Message, "reload_signal")
	assert.True(t, w.program("api").Running)

	// Cross-origin: refused before anything happens.
	rr = do(w.h, "POST", "/api/v1/programs/hupper/reload", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	assert.Equal(t, http.StatusForbidden, rr.Code)
	data, _ := os.ReadFile(w.hups)
	assert.Equal(t, 2, strings.Count(string(data), "hup "), "no third SIGHUP")

	// The page offers Reload for hupper only.
	page := do(w.h, "GET", "/", nil).Body.String()
	assert.Regexp(t, `<button name="action" value="reload" class="btn-reload" title="send SIGHUP \(reload_signal\): the process stays the same">Reload</button>`, page)
	assert.Contains(t, page, `<button name="action" value="reload" class="btn-reload" title="" hidden>Reload</button>`)

	// Read-only: refused.
	ro := newEnvWith(t, Options{ReadOnly: true}, "[Program:x]\ncommand = /bin/sleep 1000\nreload_signal = HUP")
	assert.Equal(t, http.StatusForbidden, ro.post("/api/v1/programs/x/reload", nil))
	assert.NotContains(t, do(ro.h, "GET", "/", nil).Body.String(), "btn-reload")

	// The configuration view names the stop and reload signals, the
	// dependencies and the readiness.
	cfg := w.config("hupper")
	assert.Equal(t, "HUP", cfg["reload_signal"])
	assert.Equal(t, "TERM", cfg["stop_signal"])
	assert.Equal(t, "false", cfg["stop_group"])
	assert.Equal(t, "api", cfg["depends_on"])
	assert.Contains(t, cfg["ready"], "none")
	cfg = w.config("api")
	assert.Equal(t, "INT", cfg["stop_signal"])
	assert.Equal(t, "true", cfg["stop_group"])
	assert.Contains(t, cfg["reload_signal"], "none")
	assert.Equal(t, "tcp:127.0.0.1:"+w.port, cfg["ready"])
	assert.Equal(t, "20", cfg["ready_timeout"])
	assert.Equal(t, "http://127.0.0.1:"+w.port+"/healthz", cfg["http_check"])
	assert.Equal(t, "alert", cfg["check_action"])
	page = do(w.h, "GET", "/program/hupper", nil).Body.String()
	for _, k := range []string{"stop_signal", "stop_group", "reload_signal", "depends_on", "ready"} {
		assert.Contains(t, page, "<tr><th>"+k+"</th>", k)
	}
	w.post("/api/v1/programs/hupper/stop", nil)
	w.post("/api/v1/programs/api/stop", nil)
}

// A program that ended as expected (autorestart = unexpected, exit status
// in exit_codes) is shown exited, and usrsvcd leaves it down.
func TestExitedState(t *testing.T) {
	t.Parallel()
	once := testproc.New(t, "exit-after", "1s", "3")
	e := newEnvWith(t, Options{}, "[Program:once]\ncommand = "+once.CommandLine()+
		"\nsuccess_seconds = 0.3\nautorestart = unexpected\nexit_codes = 0, 3")
	e.runDaemon()
	var p programView
	testproc.WaitFor(t, 30*time.Second, func() bool { p = e.program("once"); return p.State == stateExited }, "once exited")
	require.NotNil(t, p.LastExit)
	assert.Equal(t, 3, *p.LastExit.Status)
	assert.Zero(t, p.Restarts)
	v, err := rpc(t, e.h, "supervisor.getProcessInfo", "once")
	require.NoError(t, err)
	assert.Equal(t, "EXITED", v.(map[string]any)["statename"])
	assert.Contains(t, do(e.h, "GET", "/", nil).Body.String(), `class="state-exited"`)
	cfg := e.config("once")
	assert.Equal(t, "unexpected", cfg["autorestart"])
	assert.Equal(t, "0, 3", cfg["exit_codes"])
}
