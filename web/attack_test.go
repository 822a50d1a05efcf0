package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// DNS rebinding: a request naming another host than this server is
// refused with 421 before authentication, whatever its Origin says; the
// loopback names, allowed_hosts and a unix socket's requests pass.
func TestHostChecked(t *testing.T) {
	t.Parallel()
	h, logs := newTestHandler(t, Options{Username: "admin", Password: "correct horse", AllowedHosts: []string{"Box.Example.org"}})
	good := basic("admin", "correct horse")
	for _, host := range []string{"localhost", "localhost:9001", "127.0.0.1:80", "[::1]:9001", "[::1]", "LOCALHOST", "box.example.org:443", ""} {
		r := httptest.NewRequest("GET", "/api/v1/programs", nil)
		r.Host = host
		r.Header.Set(good[0], good[1])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusOK, w.Code, "Host %q", host)
	}
	for _, host := range []string{"evil.example:9001", "127.0.0.1.evil.example", "example.com", "10.0.0.1:9001"} {
		// The rebound page: to the browser, it is same-origin.
		r := httptest.NewRequest("POST", "/api/v1/programs/x/stop", nil)
		r.Host = host
		r.Header.Set("Origin", "http://"+host)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set(good[0], good[1])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "Host %q", host)
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		var e apiError
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
		assert.Contains(t, e.Error, "allowed_hosts")
		// Before authentication: no credentials needed to be refused.
		r = httptest.NewRequest("GET", "/", nil)
		r.Host = host
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusMisdirectedRequest, w.Code, "Host %q", host)
		assert.Equal(t, "close", w.Header().Get("Connection"))
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "its Host is not this server's"), "logged once a minute per peer: %s", logs)
}

// A unix socket's requests may name the socket.
func TestHostOfUnixSocket(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{})
	sock := t.TempDir() + "/usrsvcweb.sock"
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for host, want := range map[string]int{"localhost": 200, "usrsvcweb.sock": 200, "evil.example": 421} {
		resp, err := c.Get("http://" + host + "/api/v1/programs")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, host)
	}
}

// The API answers its refusals in JSON, like its other errors.
func TestAPIRefusalsAreJSON(t *testing.T) {
	t.Parallel()
	for _, readOnly := range []bool{false, true} {
		h, _ := newTestHandler(t, Options{ReadOnly: readOnly})
		hdr := []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}
		if readOnly {
			hdr = []string{"Sec-Fetch-Site", "same-origin"}
		}
		w := do(h, "POST", "/api/v1/programs/x/stop", nil, hdr...)
		assert.Equal(t, http.StatusForbidden, w.Code)
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"), "read-only %v", readOnly)
		var e apiError
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e), w.Body.String())
		assert.NotEmpty(t, e.Error)
	}
}

// A failed-login flood writes a line per peer and minute, not one per
// request; the user and path logged are cut to 64 bytes. Every 401 closes
// its connection.
func TestFailedLoginsLogBounded(t *testing.T) {
	t.Parallel()
	h, logs := newTestHandler(t, Options{Username: "admin", Password: "correct horse"})
	h.auth.fails = newRateLog(h.log, 300*time.Millisecond)
	user := strings.Repeat("u", 5000)
	for range 50 {
		w := do(h, "GET", "/"+strings.Repeat("p", 5000), nil, basic(user, "wrong")...)
		require.Equal(t, http.StatusUnauthorized, w.Code)
		assert.Equal(t, "close", w.Header().Get("Connection"))
		h.auth.forgetFailures()
	}
	assert.Equal(t, 1, strings.Count(logs.String(), `msg="failed login"`), logs.String())
	assert.Less(t, len(logs.String()), 600, "the fields are cut: %s", logs)
	assert.Contains(t, logs.String(), "…(5000 bytes)")
	testproc.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "50 failed logins from 192.0.2.7 in the last")
	}, "the count of the window: "+logs.String())
}

// A peer's failed logins delay its next checks; a client that leaves
// during the delay is not checked; the right password still passes.
func TestLoginThrottled(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{Username: "admin", Password: "correct horse"})
	now := time.Now()
	var mu sync.Mutex
	h.auth.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for range freeFailures {
		assert.Equal(t, http.StatusUnauthorized, do(h, "GET", "/", nil, basic("admin", "guess")...).Code)
	}
	assert.Equal(t, firstLoginDelay, h.auth.delay("192.0.2.7"))
	assert.Zero(t, h.auth.delay("192.0.2.8"), "another peer is not slowed down")
	t0 := time.Now()
	assert.Equal(t, http.StatusUnauthorized, do(h, "GET", "/", nil, basic("admin", "guess")...).Code)
	assert.GreaterOrEqual(t, time.Since(t0), firstLoginDelay, "the fourth guess waited")
	assert.Equal(t, 2*firstLoginDelay, h.auth.delay("192.0.2.7"), "doubling")
	for range 20 {
		h.auth.mu.Lock()
		h.auth.failed("192.0.2.7")
		h.auth.mu.Unlock()
	}
	assert.Equal(t, maxLoginDelay, h.auth.delay("192.0.2.7"), "bounded")

	// A client gone during its delay costs no check.
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	r.Host, r.RemoteAddr = "localhost", "192.0.2.7:1"
	b := basic("admin", "guess")
	r.Header.Set(b[0], b[1])
	done := make(chan struct{})
	w := httptest.NewRecorder()
	go func() { h.ServeHTTP(w, r); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a request whose client left still waits")
	}
	h.auth.mu.Lock()
	n := h.auth.failures["192.0.2.7"].n
	h.auth.mu.Unlock()
	assert.Equal(t, freeFailures+1+20, n, "not checked, not counted")

	// Forgotten after failureMemory: the right password passes at once.
	mu.Lock()
	now = now.Add(failureMemory + time.Second)
	mu.Unlock()
	assert.Equal(t, http.StatusOK, do(h, "GET", "/", nil, basic("admin", "correct horse")...).Code)
	// And after a delay, when the failures are recent.
	for range freeFailures {
		do(h, "GET", "/", nil, basic("admin", "guess")...)
	}
	h.auth.mu.Lock()
	h.auth.good = [32]byte{}
	h.auth.mu.Unlock()
	assert.Equal(t, http.StatusOK, do(h, "GET", "/", nil, basic("admin", "correct horse")...).Code, "a right password after failures")
	assert.Zero(t, h.auth.delay("192.0.2.7"), "a success forgets the failures")
}

// At most checkSlots password checks run at once.
func TestPasswordChecksBounded(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{Username: "admin", Password: "correct horse"})
	var mu sync.Mutex
	running, most := 0, 0
	check := h.auth.check
	h.auth.check = func(pw string) bool {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return check(pw)
	}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "/", nil)
			r.Host, r.RemoteAddr = "localhost", fmt.Sprintf("192.0.2.%d:1", i+10)
			b := basic("admin", "guess")
			r.Header.Set(b[0], b[1])
			h.ServeHTTP(httptest.NewRecorder(), r)
		}()
	}
	wg.Wait()
	assert.Equal(t, checkSlots, most)
}

// Idle connections: one peer holds at most perPeer, all peers total; the
// others are closed at once, and a legitimate client is still served.
func TestConnectionsBounded(t *testing.T) {
	t.Parallel()
	h, logs := newTestHandler(t, Options{})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := LimitListener(raw, 12, 8, h.log).(*limitListener)
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedSoon reports whether the server closed c.
	closedSoon := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	var attack []net.Conn
	for range 20 {
		attack = append(attack, dial("127.0.0.2"))
	}
	testproc.WaitFor(t, 10*time.Second, func() bool { _, n := ln.counts("127.0.0.2"); return n == 8 }, "8 held")
	assert.True(t, closedSoon(attack[19]), "the 20th is closed at once")
	for range 3 {
		dial("127.0.0.3")
	}
	testproc.WaitFor(t, 10*time.Second, func() bool { total, _ := ln.counts(""); return total == 11 }, "11 held")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/api/v1/programs")
	require.NoError(t, err, "a legitimate client is served")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1, strings.Count(logs.String(), "connection refused: 8 connections open from this peer"), logs)

	// Closing frees the slots.
	for _, c := range attack {
		c.Close()
	}
	testproc.WaitFor(t, 10*time.Second, func() bool { _, n := ln.counts("127.0.0.2"); return n == 0 }, "freed")
}

// After a 401 the server closes the connection: a client that is not
// logged in holds none.
func TestUnauthorizedConnectionClosed(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{Username: "admin", Password: "correct horse", Logger: slog.Default()})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, err := io.ReadAll(c)
	require.NoError(t, err, "the server closed the connection after its answer")
	assert.Contains(t, string(data), "401 Unauthorized")
}

// A log replaced by a symbolic link to another file of the account
// (~/.bashrc) is never followed: clearLogs does not empty the target, no
// read returns it, and a start does not append the program's output to
// it.
func TestSymlinkedLogsNotFollowed(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"alpha"}, Options{})
	bashrc := e.path("bashrc")
	const secret = "export TOKEN=s3cret\n"
	require.NoError(t, os.WriteFile(bashrc, []byte(secret), 0o600))
	require.NoError(t, os.Symlink(bashrc, e.path("alpha.log")))

	_, err := rpc(t, e.h, "supervisor.clearProcessLogs", "alpha")
	assert.Equal(t, faultFailed, faultCode(t, err))
	assert.ErrorContains(t, err, "symbolic link")
	for _, m := range []string{"supervisor.readProcessStdoutLog", "supervisor.tailProcessStdoutLog"} {
		v, err := rpc(t, e.h, m, "alpha", int64(-100), int64(0))
		if m == "supervisor.tailProcessStdoutLog" {
			v, err = rpc(t, e.h, m, "alpha", int64(0), int64(100))
		}
		assert.Error(t, err, m)
		assert.NotContains(t, fmt.Sprint(v), "TOKEN", m)
	}
	var ae apiError
	assert.Equal(t, http.StatusInternalServerError, e.getJSON("/api/v1/programs/alpha/log/stdout", &ae))
	assert.Contains(t, ae.Error, "symbolic link")
	w := do(e.h, "GET", "/program/alpha", nil)
	assert.NotContains(t, w.Body.String(), "TOKEN")
	w = do(e.h, "GET", "/logtail/alpha", nil)
	assert.Equal(t, http.StatusNotFound, w.Code)

	// The launcher does not append to it either.
	_, err = e.manager().Do(ctxFor(t), usrsvc.ActionStart, "alpha")
	assert.Error(t, err, "a start whose log is a symbolic link fails")
	data, err := os.ReadFile(bashrc)
	require.NoError(t, err)
	assert.Equal(t, secret, string(data), "the link's target is untouched")
}

// A program writing without newlines does not grow the page's follow:
// the partial line is bounded, sent cut and marked, each byte scanned
// once.
func TestFollowLongLineBounded(t *testing.T) {
	t.Parallel()
	var got []string
	var next int64
	lw := &lineWriter{emit: func(lines []string, n int64) error { got = append(got, lines...); next = n; return nil }}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	t0 := time.Now()
	for range 320 { // 10 MiB without a newline
		_, err := lw.Write(chunk)
		require.NoError(t, err)
		require.LessOrEqual(t, len(lw.partial), maxLineBytes)
	}
	assert.Less(t, time.Since(t0), 5*time.Second, "linear, not quadratic")
	require.Equal(t, 159, len(got), "cut every 64 KiB; the last 64 KiB wait for more")
	assert.True(t, got[0] == strings.Repeat("x", maxLineBytes)+cutMark, "a piece is 64 KiB and marked")
	assert.Equal(t, int64(159*maxLineBytes), next)
	_, err := lw.Write([]byte("tail\nab"))
	require.NoError(t, err)
	require.Equal(t, 161, len(got))
	assert.Equal(t, "tail", got[160])
	assert.Equal(t, int64(10<<20+5), next, "the offset after the last whole line")
	_, err = lw.Write([]byte("c\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "abc", got[len(got)-1])
}

// Every change is logged at INFO with who asked: user and peer.
func TestAuditLines(t *testing.T) {
	t.Parallel()
	e := newUIEnv(t, []string{"sleeper"}, Options{Username: "alice", Password: "correct horse"})
	auth := basic("alice", "correct horse")
	var b bytes.Buffer
	require.NoError(t, xmlrpc.EncodeCall(&b, "supervisor.startProcess", "sleeper"))
	w := do(e.h, "POST", "/RPC2", &b, auth...)
	require.Equal(t, http.StatusOK, w.Code)
	_, err := xmlrpc.DecodeResponse(w.Body)
	require.NoError(t, err)
	w = do(e.h, "POST", "/api/v1/programs/sleeper/stop", nil, append(auth, "Sec-Fetch-Site", "same-origin")...)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	logs := e.logs.String()
	assert.Contains(t, logs, `level=INFO msg="web: start" program=sleeper user=alice peer=192.0.2.7:4242`)
	assert.Contains(t, logs, `level=INFO msg="web: stop" program=sleeper user=alice peer=192.0.2.7:4242`)
}
