package web

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestEventsSnapshotThenChanges(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha", "beta"}, Options{})
	pid := e.start("alpha")
	srv := e.server()
	s := openSSE(t, srv, "/api/v1/events")
	ev := s.next(t, "snapshot", 10*time.Second)
	var o overview
	require.NoError(t, json.Unmarshal([]byte(ev.data), &o))
	require.Len(t, o.Programs, 2)
	assert.Equal(t, pid, o.Programs[0].PID)
	assert.Equal(t, stateStopped, o.Programs[1].State)

	var res actionResult
	require.Equal(t, http.StatusOK, e.post("/api/v1/programs/alpha/stop", &res), res.Message)
	s.waitProgram(t, "alpha", 10*time.Second, func(p programView) bool {
		return p.State == stateStoppedByHand && p.PID == 0
	}, "alpha shown stopped by hand")
	require.Equal(t, http.StatusOK, e.post("/api/v1/programs/beta/start", &res), res.Message)
	s.waitProgram(t, "beta", 10*time.Second, func(p programView) bool { return p.Running && p.PID > 0 }, "beta shown running")
}

// Without usrsvcd, an exit is seen through the pidfd at once: the tick is
// set to an hour so only the pidfd can tell.
func TestEventsExitSeenByPidfd(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	e.h.hub.interval = time.Hour
	pid := e.start("alpha")
	s := openSSE(t, e.server(), "/api/v1/events")
	s.next(t, "snapshot", 10*time.Second)
	waitWatched(t, e.h, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	s.waitProgram(t, "alpha", 10*time.Second, func(p programView) bool { return !p.Running }, "alpha shown not running")
}

// A program killed and restarted by the supervising loop shows its new pid
// (inotify on usrsvcd's records and the pidfd; no tick).
func TestEventsRestartByDaemon(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	e.h.hub.interval = time.Hour
	e.runDaemon()
	s := openSSE(t, e.server(), "/api/v1/events")
	p := s.waitProgram(t, "alpha", 20*time.Second, func(p programView) bool {
		return p.Running && p.State == stateRunning
	}, "alpha started by the loop")
	old := p.PID
	waitWatched(t, e.h, old)
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	p = s.waitProgram(t, "alpha", 20*time.Second, func(p programView) bool {
		return p.Running && p.PID != old && p.PID > 0
	}, "alpha shown with its new pid")
	assert.True(t, testproc.Alive(p.PID))
	var now programView
	testproc.WaitFor(t, 10*time.Second, func() bool {
		e.getJSON("/api/v1/programs/alpha", &now)
		return now.Restarts == 1 && now.LastExit != nil
	}, "the restart and the exit recorded")
	assert.Equal(t, p.PID, now.PID)
	assert.Equal(t, "killed by signal 9", now.LastExit.Description)
}

// waitWatched waits until the watcher holds a pidfd on pid.
func waitWatched(t testing.TB, h *Handler, pid int) {
	t.Helper()
	testproc.WaitFor(t, 10*time.Second, func() bool {
		return h.hub.watched(pid)
	}, "the watcher watches the process")
}

func TestEventsWatchOnlyWhileClients(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	e.h.hub.interval = 50 * time.Millisecond
	pid := e.start("alpha")
	srv := e.server()
	assert.False(t, e.h.hub.watching())
	assert.Zero(t, e.h.hub.readingCount(), "nothing is read before a client comes")

	s := openSSE(t, srv, "/api/v1/events")
	s.next(t, "snapshot", 10*time.Second)
	assert.True(t, e.h.hub.watching())
	testproc.WaitFor(t, 10*time.Second, func() bool { return e.h.hub.readingCount() >= 3 }, "the tick reads while a client watches")
	waitWatched(t, e.h, pid)
	s.close()
	testproc.WaitFor(t, 10*time.Second, func() bool { return !e.h.hub.watching() }, "the watcher stops with the last client")
	// The watch loop has returned: no tick, no inotify, no pidfd is left.
	e.h.hub.loopWG.Wait()
	assert.False(t, e.h.hub.watched(pid), "the pidfds are closed")
}

func TestEventsBoundedAndClosed(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	e.h.streams = newStreamPool(3, 2)
	srv := e.server()
	a := openSSE(t, srv, "/api/v1/events")
	b := openSSE(t, srv, "/events")
	a.next(t, "snapshot", 10*time.Second)
	b.next(t, "snapshot", 10*time.Second)
	resp, err := srv.Client().Get(srv.URL + "/api/v1/events")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, readAll(t, resp.Body), "too many live streams from your address (at most 2)")
	resp.Body.Close()
	resp, err = srv.Client().Get(srv.URL + "/api/v1/programs/alpha/log/stdout/follow")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "log follows share the pool")
	resp.Body.Close()
	appendFile(t, e.path("alpha.log"), "a line\n")
	resp, err = srv.Client().Get(srv.URL + "/logtail/alpha")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "and so does tail -f")
	resp.Body.Close()

	e.h.Close()
	assert.True(t, a.ended(5*time.Second), "Close ends every stream")
	assert.True(t, b.ended(5*time.Second), "Close ends every stream")
}

func TestEventsRemovedByReread(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha", "beta"}, Options{})
	s := openSSE(t, e.server(), "/api/v1/events")
	s.next(t, "snapshot", 10*time.Second)
	cfg, err := os.ReadFile(e.cfg.Path)
	require.NoError(t, err)
	text := string(cfg)
	require.NoError(t, os.WriteFile(e.cfg.Path, []byte(text[:strings.Index(text, "[Program:beta]")]), 0o600))
	var rr rereadResult
	require.Equal(t, http.StatusOK, e.post("/api/v1/reread", &rr), rr.Message)
	assert.Equal(t, []string{"beta"}, rr.Removed)
	ev := s.next(t, "removed", 10*time.Second)
	assert.JSONEq(t, `{"name":"beta"}`, ev.data)

	require.NoError(t, os.WriteFile(e.cfg.Path, []byte(text+"\n[Program:broken]\n"), 0o600))
	assert.Equal(t, http.StatusUnprocessableEntity, e.post("/api/v1/reread", &rr))
	assert.False(t, rr.OK)
	assert.Contains(t, rr.Message, "command")
}

// A program's page needs one stream: ?program=NAME adds the lines appended
// to its stdout and stderr, and a reconnecting browser goes on after the
// offsets of its Last-Event-ID.
func TestEventsWithLogs(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	srv := e.server()
	out, errf := e.path("alpha.log"), e.path("alpha.err")
	appendFile(t, out, "before\n")
	s := openSSE(t, srv, "/api/v1/events?program=alpha&stdout=7")
	s.next(t, "snapshot", 10*time.Second)
	appendFile(t, out, "out 1\n")
	ev := s.next(t, "log", 10*time.Second)
	assert.JSONEq(t, `{"stream":"stdout","lines":["out 1"]}`, ev.data)
	assert.Equal(t, "13,0", ev.id)
	appendFile(t, errf, "err 1\nerr 2\n")
	ev = s.next(t, "log", 10*time.Second)
	assert.JSONEq(t, `{"stream":"stderr","lines":["err 1","err 2"]}`, ev.data)
	assert.Equal(t, "13,12", ev.id)
	s.close()

	appendFile(t, out, "out 2\n")
	appendFile(t, errf, "err 3\n")
	s = openSSE(t, srv, "/api/v1/events?program=alpha", "Last-Event-ID", ev.id)
	got := map[string]string{}
	for len(got) < 2 {
		ev = s.next(t, "log", 10*time.Second)
		var d struct {
			Stream string   `json:"stream"`
			Lines  []string `json:"lines"`
		}
		require.NoError(t, json.Unmarshal([]byte(ev.data), &d))
		got[d.Stream] = strings.Join(d.Lines, "|")
	}
	assert.Equal(t, map[string]string{"stdout": "out 2", "stderr": "err 3"}, got, "nothing lost, nothing repeated")

	resp, err := srv.Client().Get(srv.URL + "/api/v1/events?program=nope")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err = srv.Client().Get(srv.URL + "/api/v1/events?program=alpha&stdout=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
