package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// uiEnv is a temp home with a config of real programs (/bin/sleep with a
// token unique to the test), and usrsvcweb's handler over it.
type uiEnv struct {
	t     testing.TB
	dir   string
	cfg   *usrsvc.Config
	token string
	h     *Handler
	logs  *testproc.Buffer
}

// newUIEnv configures one /bin/sleep program per name (extra lines go in
// every program's section), and a handler with opts.
func newUIEnv(t testing.TB, names []string, opts Options, extra ...string) *uiEnv {
	t.Helper()
	e := &uiEnv{t: t, dir: t.TempDir(), token: fmt.Sprintf("8640%d.%06d", rand.IntN(10), rand.IntN(1000000))}
	t.Cleanup(func() { testproc.KillToken("sleep " + e.token) })
	var b strings.Builder
	fmt.Fprintf(&b, "[Main]\npidfile = %s\nstate_dir = %s\n", e.path("usrsvcd.pid"), e.path("state"))
	for i, n := range names {
		fmt.Fprintf(&b, "\n[Program:%s]\ncommand = /bin/sleep %s%03d\npidfile = %s\nstdout = %s\nstderr = %s\n"+
			"success_seconds = 0.3\nterm_to_kill_seconds = 2\n",
			n, e.token, i, e.path(n+".pid"), e.path(n+".log"), e.path(n+".err"))
		for _, x := range extra {
			b.WriteString(x + "\n")
		}
	}
	require.NoError(t, os.WriteFile(e.path("usrsvc.cfg"), []byte(b.String()), 0o600))
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

func (e *uiEnv) path(name string) string { return filepath.Join(e.dir, name) }

// manager is a Manager of its own over the same config (what usrsvc or
// usrsvcd would be).
func (e *uiEnv) manager() *usrsvc.Manager {
	m, err := usrsvc.NewManager(e.cfg, usrsvc.Options{})
	require.NoError(e.t, err)
	return m
}

// start starts name as usrsvc start would, and returns its pid.
func (e *uiEnv) start(name string) int {
	e.t.Helper()
	st, err := e.manager().Do(ctxFor(e.t), usrsvc.ActionStart, name)
	require.NoError(e.t, err)
	return st.Process.PID
}

// runDaemon runs the supervising loop (usrsvcd's) over the config until
// the test ends.
func (e *uiEnv) runDaemon() { e.runDaemonWith(e.manager()) }

// runDaemonWith runs the supervising loop of m until the test ends.
func (e *uiEnv) runDaemonWith(m *usrsvc.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			e.t.Error("the supervising loop did not end within 10 s")
		}
	})
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// server serves the handler over TCP (for streams and browsers).
func (e *uiEnv) server() *httptest.Server {
	srv := httptest.NewServer(e.h)
	e.t.Cleanup(func() {
		e.h.Close() // streams end, so Close below does not wait for them
		srv.Close()
	})
	return srv
}

// getJSON decodes a GET of path on the handler into v and returns the
// status.
func (e *uiEnv) getJSON(path string, v any) int {
	e.t.Helper()
	w := do(e.h, "GET", path, nil)
	if v != nil {
		require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), v), "%s: %s", path, w.Body.String())
	}
	return w.Code
}

// post POSTs path on the handler as the page's own script would (same
// origin).
func (e *uiEnv) post(path string, v any) int {
	e.t.Helper()
	w := do(e.h, "POST", path, nil, "Sec-Fetch-Site", "same-origin")
	if v != nil {
		require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), v), "%s: %s", path, w.Body.String())
	}
	return w.Code
}

// sseStream reads server-sent events.
type sseStream struct {
	resp *http.Response
	evs  chan sseRead
	once sync.Once
}

type sseRead struct {
	name, data, id string
}

// openSSE connects to a stream of srv.
func openSSE(t testing.TB, srv *httptest.Server, path string, hdr ...string) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &sseStream{resp: resp, evs: make(chan sseRead, 1024)}
	t.Cleanup(s.close)
	go func() {
		defer close(s.evs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var ev sseRead
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					s.evs <- ev
				}
				ev = sseRead{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			}
		}
	}()
	return s
}

func (s *sseStream) close() { s.once.Do(func() { s.resp.Body.Close() }) }

// next returns the next event named name (others are skipped), failing
// after d.
func (s *sseStream) next(t testing.TB, name string, d time.Duration) sseRead {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.evs:
			if !ok {
				t.Fatalf("the stream ended while waiting for a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", name, d)
		}
	}
}

// waitProgram reads program events until one for name satisfies cond.
func (s *sseStream) waitProgram(t testing.TB, name string, d time.Duration, cond func(p programView) bool, why string) programView {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.evs:
			if !ok {
				t.Fatalf("the stream ended while waiting for: %s", why)
			}
			var ps []programView
			switch ev.name {
			case "program":
				var p programView
				require.NoError(t, json.Unmarshal([]byte(ev.data), &p))
				ps = append(ps, p)
			case "snapshot":
				var o overview
				require.NoError(t, json.Unmarshal([]byte(ev.data), &o))
				for _, p := range o.Programs {
					ps = append(ps, *p)
				}
			}
			for _, p := range ps {
				if p.Name == name && cond(p) {
					return p
				}
			}
		case <-deadline:
			t.Fatalf("timed out after %v waiting for: %s", d, why)
		}
	}
}

// ended reports whether the stream ends within d.
func (s *sseStream) ended(d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-s.evs:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func readAll(t testing.TB, r io.Reader) string {
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
