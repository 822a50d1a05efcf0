package web

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestAPIPrograms(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha", "beta"}, Options{})
	pid := e.start("alpha")

	var o overview
	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs", &o))
	require.Len(t, o.Programs, 2)
	a, b := o.Programs[0], o.Programs[1]
	assert.Equal(t, "alpha", a.Name)
	assert.Equal(t, stateRunning, a.State)
	assert.True(t, a.Running)
	assert.Equal(t, pid, a.PID)
	assert.NotEmpty(t, a.StartedAt)
	assert.Positive(t, a.RSSBytes)
	assert.Positive(t, a.PrivateBytes, "private memory is read for every running program")
	require.NotNil(t, a.CPUSeconds)
	require.NotNil(t, a.CPUPercent)
	assert.Equal(t, "beta", b.Name)
	assert.Equal(t, stateStopped, b.State)
	assert.False(t, b.Running)
	assert.Zero(t, b.PID)
	assert.False(t, o.Daemon.Running)
	assert.Equal(t, e.cfg.Path, o.Config)

	var d struct {
		programView
		Logs map[string]string `json:"logs"`
	}
	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs/alpha", &d))
	assert.Equal(t, pid, d.PID)
	assert.Equal(t, e.path("alpha.log"), d.Logs["stdout"])
	w := do(e.h, "GET", "/api/v1/programs/alpha", nil)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	cfg := raw["config"].(map[string]any)
	assert.Equal(t, e.path("alpha.pid"), cfg["pidfile"])
	assert.Equal(t, "0.3", cfg["success_seconds"])
	assert.Equal(t, "true", cfg["autorestart"])
	assert.Contains(t, cfg["proctitle_re"], "(default: ")
}

func TestAPIUnknownProgram(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	var ae apiError
	assert.Equal(t, http.StatusNotFound, e.getJSON("/api/v1/programs/alpah", &ae))
	assert.Equal(t, int(exitcode.ProgramUndefined), ae.Code)
	assert.Equal(t, "PROGRAM_UNDEFINED", ae.CodeName)
	assert.Contains(t, ae.Error, `did you mean "alpha"`)
	assert.Equal(t, http.StatusNotFound, e.post("/api/v1/programs/alpah/start", &ae))
	assert.Equal(t, http.StatusNotFound, e.getJSON("/api/v1/programs/alpah/log/stdout", &ae))
	// Names are looked up, never used as paths.
	assert.Equal(t, http.StatusNotFound, e.getJSON("/api/v1/programs/..%2f..%2fetc%2fpasswd/log/stdout", nil))
	var res actionResult
	assert.Equal(t, http.StatusNotFound, e.post("/api/v1/programs/alpha/explode", &res))
	assert.Equal(t, "INVALID_ACTION", res.CodeName)
}

func TestAPIActions(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	var res actionResult
	require.Equal(t, http.StatusOK, e.post("/api/v1/programs/alpha/start", &res))
	assert.True(t, res.OK, res.Message)
	assert.Equal(t, "SUCCESS", res.CodeName)
	require.NotNil(t, res.Status)
	assert.Equal(t, stateRunning, res.Status.State)
	pid := res.Status.PID
	assert.True(t, testproc.Alive(pid))

	require.Equal(t, http.StatusOK, e.post("/api/v1/programs/alpha/restart", &res))
	assert.True(t, res.OK, res.Message)
	assert.NotEqual(t, pid, res.Status.PID)
	testproc.WaitFor(t, 10*time.Second, func() bool { return !testproc.Alive(pid) }, "the restarted process gone")

	require.Equal(t, http.StatusOK, e.post("/api/v1/programs/alpha/stop", &res))
	assert.True(t, res.OK, res.Message)
	assert.Equal(t, stateStoppedByHand, res.Status.State, "a stop through the web is a manual stop")
	other, err := usrsvc.NewManager(e.cfg, usrsvc.Options{})
	require.NoError(t, err)
	st, err := other.Do(context.Background(), usrsvc.ActionStatus, "alpha")
	require.NoError(t, err)
	assert.True(t, (st.State == usrsvc.StateStoppedByHand), "recorded for usrsvcd like usrsvc stop")

	// GET never acts.
	assert.Equal(t, http.StatusMethodNotAllowed, do(e.h, "GET", "/api/v1/programs/alpha/start", nil).Code)
	var p programView
	e.getJSON("/api/v1/programs/alpha", &p)
	assert.False(t, p.Running)
}

func TestAPIActionFailure(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{}, "enabled = false")
	var res actionResult
	assert.Equal(t, http.StatusConflict, e.post("/api/v1/programs/alpha/start", &res))
	assert.False(t, res.OK)
	assert.Equal(t, "PROGRAM_DISABLED", res.CodeName)
	assert.Contains(t, res.Message, "disabled")
}

func TestAPIReadOnlyAndCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{ReadOnly: true})
	for _, path := range []string{"/api/v1/programs/alpha/start", "/api/v1/reread", "/program/alpha?action=start", "/reread"} {
		w := do(e.h, "POST", path, nil, "Sec-Fetch-Site", "same-origin")
		assert.Equal(t, http.StatusForbidden, w.Code, path)
	}
	assert.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs", nil), "reads still work")

	e = newUIEnv(t, []string{"alpha"}, Options{})
	for _, path := range []string{"/api/v1/programs/alpha/start", "/api/v1/reread", "/program/alpha?action=start", "/reread"} {
		w := do(e.h, "POST", "http://127.0.0.1:1/"+strings.TrimPrefix(path, "/"), nil,
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		assert.Equal(t, http.StatusForbidden, w.Code, path)
	}
	var p programView
	e.getJSON("/api/v1/programs/alpha", &p)
	assert.False(t, p.Running, "the cross-origin start did nothing")
}

func TestAPILogTail(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	var lines []string
	for i := range 300 {
		lines = append(lines, "line "+itoa(i))
	}
	require.NoError(t, os.WriteFile(e.path("alpha.log"), []byte(strings.Join(lines, "\n")+"\npartial"), 0o600))

	var tl logTail
	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs/alpha/log/stdout?lines=5", &tl))
	assert.Equal(t, []string{"line 296", "line 297", "line 298", "line 299", "partial"}, tl.Lines)
	assert.Equal(t, e.path("alpha.log"), tl.Path)
	fi, _ := os.Stat(e.path("alpha.log"))
	assert.Equal(t, fi.Size(), tl.Offset)

	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs/alpha/log/stdout", &tl))
	assert.Len(t, tl.Lines, defaultTailLines)

	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs/alpha/log/stderr", &tl))
	assert.Equal(t, []string{}, tl.Lines, "a missing file has no lines")

	var ae apiError
	assert.Equal(t, http.StatusBadRequest, e.getJSON("/api/v1/programs/alpha/log/stdout?lines=0", &ae))
	assert.Equal(t, http.StatusBadRequest, e.getJSON("/api/v1/programs/alpha/log/stdout?lines=x", &ae))
	assert.Equal(t, http.StatusNotFound, e.getJSON("/api/v1/programs/alpha/log/passwd", &ae))
	assert.Contains(t, ae.Error, "stdout or stderr")
}

func TestTailReadsBoundedFromTheEnd(t *testing.T) {
	t.Parallel()
	p := t.TempDir() + "/big.log"
	f, err := os.Create(p)
	require.NoError(t, err)
	// A 64 MiB sparse hole, then two lines: the tail reads only the end.
	require.NoError(t, f.Truncate(64<<20))
	_, err = f.WriteAt([]byte("\nlast but one\nlast\n"), 64<<20)
	require.NoError(t, err)
	f.Close()
	lines, end, err := tailFile(p, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"last but one", "last"}, lines)
	assert.Equal(t, int64(64<<20+19), end)
}

func TestAPIFollowLog(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	srv := e.server()
	log := e.path("alpha.log")
	require.NoError(t, os.WriteFile(log, []byte("old\n"), 0o600))
	var tl logTail
	e.getJSON("/api/v1/programs/alpha/log/stdout", &tl)

	s := openSSE(t, srv, "/api/v1/programs/alpha/log/stdout/follow?offset="+i64toa(tl.Offset))
	appendFile(t, log, "one\ntwo\nhalf")
	ev := s.next(t, "lines", 10*time.Second)
	assert.JSONEq(t, `{"lines":["one","two"]}`, ev.data)
	appendFile(t, log, " done\n")
	ev = s.next(t, "lines", 10*time.Second)
	assert.JSONEq(t, `{"lines":["half done"]}`, ev.data)
	fi, _ := os.Stat(log)
	assert.Equal(t, i64toa(fi.Size()), ev.id, "the id is the offset after the lines")

	// logrotate's create: renamed away, a new file in its place.
	require.NoError(t, os.Rename(log, log+".1"))
	require.NoError(t, os.WriteFile(log, []byte("fresh\n"), 0o600))
	ev = s.next(t, "lines", 10*time.Second)
	assert.JSONEq(t, `{"lines":["fresh"]}`, ev.data)
	// copytruncate: truncated in place, then written again: shorter than
	// where the follower was, so whenever it looks it sees the truncation.
	require.NoError(t, os.Truncate(log, 0))
	appendFile(t, log, "cut\n")
	ev = s.next(t, "lines", 10*time.Second)
	assert.JSONEq(t, `{"lines":["cut"]}`, ev.data)

	// A reconnecting browser goes on after its Last-Event-ID.
	s.close()
	appendFile(t, log, "while away\n")
	s2 := openSSE(t, srv, "/api/v1/programs/alpha/log/stdout/follow?offset=0", "Last-Event-ID", ev.id)
	ev = s2.next(t, "lines", 10*time.Second)
	assert.JSONEq(t, `{"lines":["while away"]}`, ev.data)

	// Close ends the stream.
	e.h.Close()
	assert.True(t, s2.ended(5*time.Second), "the follow ends when the handler closes")
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(text)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func itoa(i int) string     { return i64toa(int64(i)) }
func i64toa(i int64) string { b, _ := json.Marshal(i); return string(b) }

// When usrsvcd rereads its configuration (usrsvcd reread), usrsvcweb puts
// the same in force: the page, the API and the metrics list what usrsvcd
// supervises.
func TestFollowsDaemonReread(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	loop := e.manager()
	e.runDaemonWith(loop)
	var o overview
	e.getJSON("/api/v1/programs", &o) // the acknowledgement as it is now
	require.Len(t, o.Programs, 1)

	text, err := os.ReadFile(e.cfg.Path)
	require.NoError(t, err)
	added := strings.ReplaceAll(string(text[strings.Index(string(text), "[Program:alpha]"):]), "alpha", "omega")
	require.NoError(t, os.WriteFile(e.cfg.Path, append(text, "\n"+added...), 0o600))
	require.NoError(t, loop.Reread(ctxFor(t)))
	testproc.WaitFor(t, 10*time.Second, func() bool {
		o = overview{}
		e.getJSON("/api/v1/programs", &o)
		return len(o.Programs) == 2 && o.Programs[1].Name == "omega"
	}, "omega listed after usrsvcd's reread")
	require.NotNil(t, o.Daemon.LastReread)
	assert.True(t, o.Daemon.LastReread.OK)
	assert.Contains(t, e.logs.String(), "configuration reread by usrsvcd put in force")
}

// A FIFO configured as a log is refused, never opened for reading (which
// would block).
func TestAPILogNotARegularFile(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	require.NoError(t, syscall.Mkfifo(e.path("alpha.log"), 0o600))
	var ae apiError
	done := make(chan int, 1)
	go func() { done <- e.getJSON("/api/v1/programs/alpha/log/stdout", &ae) }()
	select {
	case code := <-done:
		assert.Equal(t, http.StatusInternalServerError, code)
		assert.Contains(t, ae.Error, "not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("reading a FIFO log blocked")
	}
	assert.Equal(t, http.StatusOK, do(e.h, "GET", "/program/alpha", nil).Code, "the program page still renders")
}

// A program removed from the configuration that still runs is listed, as
// removed, until it ends: never invisible.
func TestAPIListsRemovedPrograms(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	extra := testproc.New(t, "sleep")
	pid := extra.Detach(t)
	p, err := proc.Default().Stat(pid)
	require.NoError(t, err)
	require.NoError(t, statedir.Dir(e.path("state")).WriteRecord(&statedir.Record{Program: "extra", State: "removed",
		PID: pid, StartTicks: p.StartTicks, Updated: time.Now(), Reason: "removed from the configuration, still running"}))
	var o overview
	require.Equal(t, http.StatusOK, e.getJSON("/api/v1/programs", &o))
	require.Len(t, o.Programs, 2)
	r := o.Programs[1]
	assert.Equal(t, "extra", r.Name)
	assert.Equal(t, stateRemoved, r.State)
	assert.Equal(t, pid, r.PID)
	assert.Contains(t, r.Reason, "removed from the configuration")
}
