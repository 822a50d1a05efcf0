package web

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// testConfig writes a main config with programs (name → command) in a temp
// dir and loads it.
func testConfig(t testing.TB, web string, programs map[string]string) *usrsvc.Config {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("[Main]\npidfile = " + dir + "/usrsvcd.pid\nstate_dir = " + dir + "/state\n")
	if web != "" {
		b.WriteString("[Web]\n" + web + "\n")
	}
	for name, cmd := range programs {
		b.WriteString("[Program:" + name + "]\ncommand = " + cmd + "\npidfile = " + dir + "/" + name + ".pid\n" +
			"stdout = " + dir + "/" + name + ".log\nstderr = " + dir + "/" + name + ".err\n")
	}
	p := filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	cfg, err := usrsvc.LoadConfig(p)
	require.NoError(t, err)
	return cfg
}

func newTestHandler(t testing.TB, opts Options) (*Handler, *testproc.Buffer) {
	t.Helper()
	if opts.Config == nil {
		opts.Config = testConfig(t, "", nil)
	}
	logs := &testproc.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { h.Close() })
	return h, logs
}

func do(h http.Handler, method, path string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, body)
	r.RemoteAddr = "192.0.2.7:4242"
	if !strings.HasPrefix(path, "http") {
		r.Host = "localhost" // httptest's default, example.com, is refused (421)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func basic(user, pw string) []string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return []string{"Authorization", r.Header.Get("Authorization")}
}

func TestAuthPasswordForms(t *testing.T) {
	t.Parallel()
	sum := sha1.Sum([]byte("s3cret"))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	for _, stored := range []string{"s3cret", "{SHA}" + hex.EncodeToString(sum[:]), "{sha}" + strings.ToUpper(hex.EncodeToString(sum[:])), string(hash)} {
		h, logs := newTestHandler(t, Options{Username: "admin", Password: stored})
		for _, path := range []string{"/", "/RPC2", "/logtail/x", "/api/v1/programs", "/metrics", "/nothing"} {
			w := do(h, "GET", path, nil)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%s without credentials (%s)", path, stored)
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic")
			w = do(h, "GET", path, nil, basic("admin", "wrong")...)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%s with a wrong password (%s)", path, stored)
			w = do(h, "GET", path, nil, basic("root", "s3cret")...)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "%s with a wrong user (%s)", path, stored)
			h.auth.forgetFailures() // no throttling here: TestLoginThrottled tests it
		}
		assert.Contains(t, logs.String(), "failed login")
		assert.Contains(t, logs.String(), "peer=192.0.2.7:4242")
		// Twice: the second hits the remembered digest.
		for range 2 {
			w := do(h, "GET", "/", nil, basic("admin", "s3cret")...)
			assert.Equal(t, http.StatusOK, w.Code, stored)
		}
		w := do(h, "GET", "/", nil, basic("admin", "s3cretX")...)
		assert.Equal(t, http.StatusUnauthorized, w.Code, "a longer password after a good one (%s)", stored)
	}
}

func TestAuthRefusesHalfCredentials(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", nil)
	_, err := New(Options{Config: cfg, Username: "u"})
	assert.Error(t, err)
	_, err = New(Options{Config: cfg, Username: "u", Password: "{SHA}zz"})
	assert.Error(t, err)
	_, err = New(Options{Config: cfg, Username: "u", Password: "$2b$10$bad"})
	assert.Error(t, err)
	_, err = New(Options{Config: cfg, Username: "u", Password: "$2b$15$" + strings.Repeat("a", 53)})
	assert.ErrorContains(t, err, "cost 15")
	_, err = New(Options{})
	assert.Error(t, err)
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{})
	for _, path := range []string{"/", "/nothing"} {
		w := do(h, "GET", path, nil)
		assert.Equal(t, "default-src 'self'; frame-ancestors 'none'", w.Header().Get("Content-Security-Policy"), path)
		assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"), path)
		assert.Equal(t, "DENY", w.Header().Get("X-Frame-Options"), path)
	}
}

func TestActionRoutes(t *testing.T) {
	t.Parallel()
	for _, readOnly := range []bool{false, true} {
		h, _ := newTestHandler(t, Options{ReadOnly: readOnly})
		var calls int
		h.handleAction("POST /test/action", func(w http.ResponseWriter, r *http.Request) {
			calls++
			io.Copy(io.Discard, r.Body)
		})
		h.handle("GET /test/read", func(w http.ResponseWriter, r *http.Request) {})
		w := do(h, "POST", "/test/action", nil)
		if readOnly {
			assert.Equal(t, http.StatusForbidden, w.Code)
			assert.Contains(t, w.Body.String(), "read-only")
			assert.Equal(t, 0, calls)
			continue
		}
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 1, calls)
		// A browser's cross-origin POST is refused.
		w = do(h, "POST", "http://127.0.0.1:9001/test/action", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		assert.Equal(t, http.StatusForbidden, w.Code)
		w = do(h, "POST", "http://127.0.0.1:9001/test/action", nil, "Origin", "https://evil.example")
		assert.Equal(t, http.StatusForbidden, w.Code)
		// Same origin passes.
		w = do(h, "POST", "http://127.0.0.1:9001/test/action", nil, "Sec-Fetch-Site", "same-origin", "Origin", "http://127.0.0.1:9001")
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 2, calls)
		// GET of an action route changes nothing.
		w = do(h, "GET", "/test/action", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
		assert.Equal(t, 2, calls)
	}
}

func TestBodyBounded(t *testing.T) {
	t.Parallel()
	h, _ := newTestHandler(t, Options{})
	var readErr error
	h.handleAction("POST /test/body", func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.Copy(io.Discard, r.Body)
	})
	do(h, "POST", "/test/body", bytes.NewReader(make([]byte, DefaultMaxBody)))
	assert.NoError(t, readErr)
	do(h, "POST", "/test/body", bytes.NewReader(make([]byte, DefaultMaxBody+1)))
	var mbe *http.MaxBytesError
	assert.ErrorAs(t, readErr, &mbe)
}
