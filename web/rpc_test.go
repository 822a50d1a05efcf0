package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// rpc calls method through ServeHTTP and decodes the answer.
func rpc(t *testing.T, h http.Handler, method string, params ...any) (any, error) {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, xmlrpc.EncodeCall(&b, method, params...))
	w := do(h, "POST", "/RPC2", &b)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "text/xml; charset=utf-8", w.Header().Get("Content-Type"))
	return xmlrpc.DecodeResponse(w.Body)
}

func faultCode(t *testing.T, err error) int {
	t.Helper()
	f, ok := err.(*xmlrpc.Fault)
	require.True(t, ok, "want a fault, got %v", err)
	return f.Code
}

func TestRPCBasics(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{Config: testConfig(t, "", map[string]string{"p": "/bin/sleep 1000"})})
	v, err := rpc(t, h, "supervisor.getAPIVersion")
	require.NoError(t, err)
	assert.Equal(t, "3.0", v)
	_, err = rpc(t, h, "supervisor.nope")
	assert.Equal(t, faultUnknownMethod, faultCode(t, err))
	_, err = rpc(t, h, "supervisor.getProcessInfo")
	assert.Equal(t, faultIncorrectParameters, faultCode(t, err))
	_, err = rpc(t, h, "supervisor.getProcessInfo", "p", "extra")
	assert.Equal(t, faultIncorrectParameters, faultCode(t, err))
	for _, spec := range []string{"nope", "p:q", "nope:*"} {
		_, err = rpc(t, h, "supervisor.getProcessInfo", spec)
		assert.Equal(t, faultBadName, faultCode(t, err), spec)
	}
	for _, spec := range []string{"p", "p:p", "p:*"} {
		v, err = rpc(t, h, "supervisor.getProcessInfo", spec)
		require.NoError(t, err, spec)
		assert.Equal(t, "p", v.(map[string]any)["name"])
	}
	// getAllConfigInfo names the program's working directory: the home
	// directory unless the directory key sets one.
	cfg := testConfig(t, "", map[string]string{"p": "/bin/sleep 1000", "q": "/bin/sleep 1000"})
	cfg.Program("q").Dir = "/tmp"
	h2, _ := newTestHandler(t, Options{Config: cfg})
	v, err = rpc(t, h2, "supervisor.getAllConfigInfo")
	require.NoError(t, err)
	home, err := home.Dir()
	require.NoError(t, err)
	infos := v.([]any)
	require.Len(t, infos, 2)
	assert.Equal(t, home, infos[0].(map[string]any)["directory"])
	assert.Equal(t, "/tmp", infos[1].(map[string]any)["directory"])
	// Malformed, hostile or oversized bodies are faults, never a crash.
	for _, body := range []string{"", "<methodCall>", `<!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName></methodCall>`} {
		w := do(h, "POST", "/RPC2", strings.NewReader(body))
		_, err := xmlrpc.DecodeResponse(w.Body)
		assert.Equal(t, faultParse, faultCode(t, err), body)
	}
	w := do(h, "POST", "/RPC2", bytes.NewReader(bytes.Repeat([]byte(" "), DefaultMaxBody+10)))
	_, err = xmlrpc.DecodeResponse(w.Body)
	assert.Equal(t, faultParse, faultCode(t, err))
	// GET is not XML-RPC.
	assert.Equal(t, http.StatusMethodNotAllowed, do(h, "GET", "/RPC2", nil).Code)
}

func TestRPCReadOnly(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{ReadOnly: true, Config: testConfig(t, "", map[string]string{"p": "/bin/sleep 1000"})})
	for _, call := range [][]any{{"supervisor.startProcess", "p"}, {"supervisor.stopProcess", "p"},
		{"supervisor.startAllProcesses"}, {"supervisor.stopAllProcesses"}, {"supervisor.signalProcess", "p", "HUP"},
		{"supervisor.signalAllProcesses", "HUP"}, {"supervisor.clearProcessLogs", "p"}, {"supervisor.reloadConfig"},
		{"supervisor.startProcessGroup", "p"}, {"supervisor.stopProcessGroup", "p"}, {"supervisor.clearAllProcessLogs"},
		{"supervisor.signalProcessGroup", "p", "HUP"}, {"supervisor.addProcessGroup", "p"}, {"supervisor.removeProcessGroup", "p"}} {
		_, err := rpc(t, h, call[0].(string), call[1:]...)
		require.Error(t, err, call[0])
		assert.Contains(t, err.Error(), "read-only", call[0])
	}
	// Reads work.
	_, err := rpc(t, h, "supervisor.getAllProcessInfo")
	assert.NoError(t, err)
	// A multicall cannot sneak a change in.
	v, err := rpc(t, h, "system.multicall", []any{map[string]any{"methodName": "supervisor.stopProcess", "params": []any{"p"}}})
	require.NoError(t, err)
	assert.Equal(t, faultFailed, int(v.([]any)[0].(map[string]any)["faultCode"].(int64)))
}

func TestProcessState(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	pc := &usrsvc.Program{Name: "p", Enabled: true, Stdout: "/o", Stderr: "/e"}
	started := time.Unix(1_700_000_000-3725, 0)
	exit := &usrsvc.ExitStatus{Time: time.Unix(1_699_999_000, 0), Exited: true, Status: 3, Known: true}
	killed := &usrsvc.ExitStatus{Time: time.Unix(1_699_999_000, 0), Signal: 9, Known: true}
	running := &usrsvc.Process{PID: 42, Started: started}
	for _, c := range []struct {
		st       usrsvc.Status
		pc       *usrsvc.Program
		state    string
		desc     string
		exitcode int
	}{
		{usrsvc.Status{Running: true, Process: running}, pc, "RUNNING", "pid 42, uptime 1:02:05", 0},
		{usrsvc.Status{Running: true, Process: running, Health: "healthy"}, pc, "RUNNING", "pid 42, uptime 1:02:05", 0},
		{usrsvc.Status{Running: true, Process: running, Health: "unhealthy", HealthReason: "http_check http://127.0.0.1:9/: status 503 (3 in a row)"},
			pc, "RUNNING", "pid 42, uptime 1:02:05, unhealthy: http_check http://127.0.0.1:9/: status 503 (3 in a row)", 0},
		{usrsvc.Status{Running: true, Process: running, Recorded: true, State: "starting"}, pc, "STARTING", "starting", 0},
		{usrsvc.Status{State: usrsvc.StateStoppedByHand}, pc, "STOPPED", "stopped by hand", 0},
		{usrsvc.Status{Recorded: true, State: "gave-up", Reason: "exited 5 times"}, pc, "FATAL", "usrsvcd gave up restarting it: exited 5 times", 0},
		{usrsvc.Status{Recorded: true, State: "backoff", Reason: "exit status 1; next try in 4s", LastExit: exit}, pc, "BACKOFF", "exit status 1; next try in 4s", 3},
		{usrsvc.Status{Recorded: true, LastExit: exit}, pc, "EXITED", ", exit status 3", 3},
		{usrsvc.Status{Recorded: true, LastExit: killed}, pc, "EXITED", ", killed by SIGKILL", -1},
		{usrsvc.Status{}, pc, "EXITED", "not running", 0},
		{usrsvc.Status{}, &usrsvc.Program{Name: "p"}, "STOPPED", "disabled (enabled = false)", 0},
	} {
		c.st.Program = "p"
		info := h.processInfo("p", c.pc, &c.st)
		assert.Equal(t, c.state, info["statename"], c.desc)
		assert.Contains(t, info["description"], c.desc)
		assert.Equal(t, c.exitcode, info["exitstatus"], c.desc)
		assert.Equal(t, int64(1_700_000_000), info["now"])
		assert.Equal(t, "p", info["group"])
	}
	assert.Equal(t, "2 days, 0:00:01", pyUptime(48*time.Hour+time.Second))
	assert.Equal(t, "1 day, 1:00:00", pyUptime(25*time.Hour))
}

func TestParseSignal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]syscall.Signal{"HUP": syscall.SIGHUP, "sigterm": syscall.SIGTERM, "SIGUSR1": syscall.SIGUSR1, "9": syscall.SIGKILL} {
		got, f := parseSignal(in)
		assert.Nil(t, f, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "FOO", "0", "99", "-1"} {
		_, f := parseSignal(in)
		require.NotNil(t, f, in)
		assert.Equal(t, faultBadSignal, f.Code)
	}
}

func TestLogReads(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", map[string]string{"p": "/bin/sleep 1000"})
	pc := cfg.Program("p")
	require.NoError(t, os.WriteFile(pc.Stdout, []byte("0123456789"), 0o600))
	h, _ := newTestHandler(t, Options{Config: cfg})
	for _, c := range []struct {
		offset, length int64
		want           string
	}{{-4, 0, "6789"}, {-100, 0, "0123456789"}, {2, 3, "234"}, {8, 0, "89"}, {20, 0, ""}} {
		v, err := rpc(t, h, "supervisor.readProcessStdoutLog", "p", c.offset, c.length)
		require.NoError(t, err)
		assert.Equal(t, c.want, v, "%d %d", c.offset, c.length)
	}
	_, err := rpc(t, h, "supervisor.readProcessStdoutLog", "p", -4, 2)
	assert.Equal(t, faultBadArguments, faultCode(t, err))
	_, err = rpc(t, h, "supervisor.readProcessStderrLog", "p", 0, 0)
	assert.Equal(t, faultNoFile, faultCode(t, err))
	v, err := rpc(t, h, "supervisor.tailProcessStdoutLog", "p", 0, 4)
	require.NoError(t, err)
	assert.Equal(t, []any{"6789", int64(10), true}, v)
	v, err = rpc(t, h, "supervisor.tailProcessStdoutLog", "p", 10, 4)
	require.NoError(t, err)
	assert.Equal(t, []any{"", int64(10), false}, v)
	v, err = rpc(t, h, "supervisor.tailProcessStderrLog", "p", 0, 4)
	require.NoError(t, err)
	assert.Equal(t, []any{"", int64(0), false}, v)

	// A huge file: a read returns its last MiB, never the whole file.
	f, err := os.OpenFile(pc.Stdout, os.O_WRONLY, 0)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30)) // sparse 1 GiB
	f.Close()
	// (NUL bytes travel as U+FFFD: XML cannot carry them.)
	v, err = rpc(t, h, "supervisor.readProcessStdoutLog", "p", -(1 << 30), 0)
	require.NoError(t, err)
	assert.Equal(t, MaxLogRead, utf8.RuneCountInString(v.(string)))
	v, err = rpc(t, h, "supervisor.readProcessStdoutLog", "p", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, MaxLogRead, utf8.RuneCountInString(v.(string)))
	assert.True(t, strings.HasPrefix(v.(string), "0123456789"))

	// clear truncates in place, only the configured files.
	_, err = rpc(t, h, "supervisor.clearProcessLogs", "p")
	require.NoError(t, err)
	fi, err := os.Stat(pc.Stdout)
	require.NoError(t, err)
	assert.Zero(t, fi.Size())
}

func TestLogtailStream(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", map[string]string{"p": "/bin/sleep 1000"})
	pc := cfg.Program("p")
	require.NoError(t, os.WriteFile(pc.Stdout, []byte(strings.Repeat("x", 5000)+"\nlast\n"), 0o600))
	h, _ := newTestHandler(t, Options{Config: cfg})
	assert.Equal(t, http.StatusNotFound, do(h, "GET", "/logtail/nope", nil).Code)
	assert.Equal(t, http.StatusNotFound, do(h, "GET", "/logtail/p/bogus", nil).Code)
	assert.Equal(t, http.StatusNotFound, do(h, "GET", "/logtail/p/stderr", nil).Code, "no file yet")
	assert.Equal(t, http.StatusNotFound, do(h, "GET", "/logtail/..%2f..%2fetc%2fpasswd", nil).Code)

	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/logtail/p")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	buf := make([]byte, 2048)
	n, err := resp.Body.Read(buf)
	require.NoError(t, err)
	assert.True(t, n <= tailHead && strings.HasSuffix(string(buf[:n]), "x\nlast\n"), "starts with the last KiB: %d bytes", n)
	// Close ends the stream, so that a shutdown does not wait for it.
	done := make(chan struct{})
	go func() {
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				close(done)
				return
			}
		}
	}()
	h.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end on Close")
	}
}

// One pool of streams: MaxStreams in all, MaxStreamsPerPeer for one peer.
func TestStreamsBounded(t *testing.T) {
	t.Parallel()
	p := newStreamPool(MaxStreams, MaxStreamsPerPeer)
	var releases []func()
	for i := range MaxStreams {
		r, err := p.acquire(fmt.Sprintf("10.0.0.%d", i/MaxStreamsPerPeer))
		require.NoError(t, err)
		releases = append(releases, r)
	}
	_, err := p.acquire("10.0.0.99")
	assert.ErrorContains(t, err, "at most 64")
	releases[0]()
	releases[0]() // twice is once
	_, err = p.acquire("10.0.0.0")
	assert.NoError(t, err)
	_, err = p.acquire("10.0.0.0")
	assert.Error(t, err)

	p = newStreamPool(MaxStreams, MaxStreamsPerPeer)
	for range MaxStreamsPerPeer {
		_, err := p.acquire("10.0.0.1")
		require.NoError(t, err)
	}
	_, err = p.acquire("10.0.0.1")
	assert.ErrorContains(t, err, "from your address (at most 8)")
	_, err = p.acquire("10.0.0.2")
	assert.NoError(t, err, "another peer still gets one")
}

func TestRereadDiff(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", map[string]string{"a": "/bin/sleep 1", "b": "/bin/sleep 2"})
	h, _ := newTestHandler(t, Options{Config: cfg})
	data, err := os.ReadFile(cfg.Path)
	require.NoError(t, err)
	dir := filepath.Dir(cfg.Path)
	src := strings.Replace(string(data), "/bin/sleep 2", "/bin/sleep 3", 1) +
		"[Program:c]\ncommand = /bin/sleep 4\npidfile = " + dir + "/c.pid\nstdout = " + dir + "/c.log\n"
	require.NoError(t, os.WriteFile(cfg.Path, []byte(src), 0o600))
	v, err := rpc(t, h, "supervisor.reloadConfig")
	require.NoError(t, err)
	assert.Equal(t, []any{[]any{[]any{"c"}, []any{"b"}, []any{}}}, v, "c added, b changed: as supervisord, until update")
	out := h.lastReload.Load()
	assert.Equal(t, []string{"c"}, out.Added)
	assert.Equal(t, []string{"b"}, out.Changed)
	assert.NotNil(t, h.config().Program("c"))
}

func TestRPCCrossOriginRefused(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{})
	var b bytes.Buffer
	require.NoError(t, xmlrpc.EncodeCall(&b, "supervisor.stopAllProcesses"))
	// A page of another site posting to /RPC2 through the browser.
	w := do(h, "POST", "http://127.0.0.1:9001/RPC2", bytes.NewReader(b.Bytes()),
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example", "Content-Type", "text/plain")
	assert.Equal(t, http.StatusForbidden, w.Code)
	// supervisorctl sends neither header: allowed.
	w = do(h, "POST", "http://127.0.0.1:9001/RPC2", bytes.NewReader(b.Bytes()))
	assert.Equal(t, http.StatusOK, w.Code)
}

func TestNewServerBounds(t *testing.T) {
	t.Parallel()
	srv := NewServer(http.NotFoundHandler())
	assert.Equal(t, ReadHeaderTimeout, srv.ReadHeaderTimeout)
	assert.Positive(t, srv.ReadTimeout)
	assert.Equal(t, MaxHeaderBytes, srv.MaxHeaderBytes)
	assert.Zero(t, srv.WriteTimeout, "streams (tail -f, events) must not be cut")
}

// One request cannot make usrsvcweb build gigabytes: a multicall takes at
// most MaxMulticallCalls calls, and its results at most MaxRPCResponse
// bytes; a fault says how to ask for less.
func TestMulticallBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", map[string]string{"big": "/bin/sleep 1000"})
	h, _ := newTestHandler(t, Options{Config: cfg})
	log := cfg.Program("big").Stdout
	require.NoError(t, os.WriteFile(log, bytes.Repeat([]byte(strings.Repeat("x", 1023)+"\n"), 1024), 0o600))
	read := map[string]any{"methodName": "supervisor.readProcessLog", "params": []any{"big", int64(0), int64(0)}}
	calls := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = read
		}
		return out
	}
	_, err := rpc(t, h, "system.multicall", calls(MaxMulticallCalls+1))
	assert.Equal(t, faultIncorrectParameters, faultCode(t, err))
	assert.ErrorContains(t, err, "system.multicall takes at most 64 calls, not 65")

	_, err = rpc(t, h, "system.multicall", calls(9)) // 9 MiB
	assert.Equal(t, faultFailed, faultCode(t, err))
	assert.ErrorContains(t, err, "the response would be larger than 8 MiB")

	v, err := rpc(t, h, "system.multicall", calls(7))
	require.NoError(t, err)
	assert.Len(t, v, 7)
	assert.Len(t, v.([]any)[6].([]any)[0], 1<<20)
}

// Requests reading logs take one of maxLogRequests slots: one more waits
// until a slot is free, and gives up when its client leaves.
func TestLogReadSlots(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{})
	var releases []func()
	for range maxLogRequests {
		release, ok := h.acquireLogSlot(t.Context())
		require.True(t, ok)
		releases = append(releases, release)
	}
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan bool, 1)
	go func() {
		release, ok := h.acquireLogSlot(ctx)
		if ok {
			release()
		}
		got <- ok
	}()
	select {
	case <-got:
		t.Fatal("a fifth log read did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	assert.False(t, <-got, "a client that left gives up its wait")
	releases[0]()
	release, ok := h.acquireLogSlot(t.Context())
	require.True(t, ok, "a freed slot is taken")
	release()
	for _, r := range releases[1:] {
		r()
	}
}
