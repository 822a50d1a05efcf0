package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
	"github.com/usrsvc/usrsvc/internal/version"
)

// asMain makes the test binary run as usrsvcweb: the integration tests
// run it as a real process (signals, socket, launcher re-exec and all).
const asMain = "USRSVCWEB_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	testproc.Main()
	if os.Getenv(asMain) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// writeConfig writes a main config with the given [Web] lines in a temp dir
// and returns its path and the state directory.
func writeConfig(t *testing.T, web string) (cfgPath, stateDir string) {
	t.Helper()
	dir := t.TempDir()
	stateDir = filepath.Join(dir, "state")
	src := "[Main]\npidfile = " + dir + "/usrsvcd.pid\nstate_dir = " + stateDir + "\n"
	if web != "" {
		src += "[Web]\n" + web + "\n"
	}
	src += "[Program:p]\ncommand = sleep 1000\npidfile = " + dir + "/p.pid\nstdout = " + dir + "/p.log\n"
	cfgPath = filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(src), 0o600))
	return cfgPath, stateDir
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	assert.Equal(t, 0, run([]string{"--version"}, &out, &errb))
	assert.Equal(t, "usrsvcweb "+version.Version+"\n", out.String())
	out.Reset()
	for _, h := range []string{"--help", "-h", "help"} {
		out.Reset()
		errb.Reset()
		assert.Equal(t, int(exitcode.Success), run([]string{h}, &out, &errb), h)
		assert.Contains(t, out.String(), "usage: usrsvcweb", h)
		assert.Contains(t, out.String(), "      --listen ADDR ", h)
		assert.Empty(t, errb.String(), h)
	}
	errb.Reset()
	assert.Equal(t, int(exitcode.InvalidAction), run([]string{"start"}, &out, &errb))
	assert.Contains(t, errb.String(), `unexpected argument "start": usrsvcweb takes only options`)
	errb.Reset()
	assert.Equal(t, int(exitcode.InvalidAction), run([]string{"lisen", "x"}, &out, &errb))
	assert.Contains(t, errb.String(), `unexpected argument "lisen": usrsvcweb takes only options; did you mean --listen?`)
	errb.Reset()
	assert.Equal(t, int(exitcode.InvalidAction), run([]string{"--lisen", "x"}, &out, &errb))
	assert.Contains(t, errb.String(), `usrsvcweb: unknown option --lisen; did you mean --listen?`)
}

func TestTCPWithoutPasswordRefused(t *testing.T) {
	t.Parallel()
	// In the config: checkconfig's error, with file:line.
	cfgPath, _ := writeConfig(t, "listen = 127.0.0.1:0")
	var out, errb bytes.Buffer
	assert.Equal(t, 130, run([]string{"--config", cfgPath}, &out, &errb))
	assert.Contains(t, errb.String(), cfgPath+":5: listen = 127.0.0.1:0 is a TCP address but [Web] has no password")
	// Through --listen: refused before listening, with the fix.
	cfgPath, _ = writeConfig(t, "")
	errb.Reset()
	assert.Equal(t, 130, run([]string{"--config", cfgPath, "--listen", "127.0.0.1:0"}, &out, &errb))
	assert.Contains(t, errb.String(), "refusing to listen on TCP address 127.0.0.1:0 without a password")
	assert.Contains(t, errb.String(), "Fix: set username and password in the [Web] section of "+cfgPath)
	errb.Reset()
	assert.Equal(t, 130, run([]string{"--config", cfgPath, "--listen", "unix:rel.sock"}, &out, &errb))
	assert.Contains(t, errb.String(), "must be absolute")
}

// serve runs usrsvcweb in this process until the returned stop is called;
// stop returns the exit code and how long the shutdown took.
func serve(t *testing.T, args ...string) (addr string, stop func() (int, time.Duration), logs *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan int, 1)
	var out bytes.Buffer
	logs = &bytes.Buffer{}
	go func() { done <- runCtx(ctx, args, &out, logs, func(a string) { ready <- a }) }()
	select {
	case addr = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("usrsvcweb exited with %d: %s", code, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("usrsvcweb did not start")
	}
	stopped := false
	stop = func() (int, time.Duration) {
		stopped = true
		t0 := time.Now()
		cancel()
		select {
		case code := <-done:
			return code, time.Since(t0)
		case <-time.After(30 * time.Second):
			t.Fatal("usrsvcweb did not stop")
			return -1, 0
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return addr, stop, logs
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
}

func TestUnixSocket(t *testing.T) {
	// Not parallel: usrsvcweb sets the process umask while it creates its socket.
	cfgPath, stateDir := writeConfig(t, "")
	addr, stop, _ := serve(t, "--config", cfgPath)
	sock := filepath.Join(stateDir, "usrsvcweb.sock")
	assert.Equal(t, "unix:"+sock, addr)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o600, fi.Mode()&(os.ModeType|os.ModePerm), "the socket is 0600")
	di, err := os.Stat(stateDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "the state directory is 0700")

	resp, err := unixClient(sock).Get("http://usrsvcweb/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A second usrsvcweb on the same socket is refused; the first goes on.
	var out, errb bytes.Buffer
	assert.NotEqual(t, 0, run([]string{"--config", cfgPath}, &out, &errb))
	assert.Contains(t, errb.String(), "another usrsvcweb already listens on "+sock)

	code, took := stop()
	assert.Equal(t, 0, code)
	assert.Less(t, took, 10*time.Second, "a graceful shutdown: requests in flight get shutdownGrace, streams end at once")
	_, err = os.Lstat(sock)
	assert.True(t, os.IsNotExist(err), "the socket is removed: %v", err)
}

func TestStaleSocketReplaced(t *testing.T) {
	// Not parallel: usrsvcweb sets the process umask while it creates its socket.
	cfgPath, stateDir := writeConfig(t, "")
	require.NoError(t, os.MkdirAll(stateDir, 0o700))
	sock := filepath.Join(stateDir, "usrsvcweb.sock")
	// A socket nobody listens on, as a SIGKILLed usrsvcweb leaves it.
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, stop, _ := serve(t, "--config", cfgPath)
	code, _ := stop()
	assert.Equal(t, 0, code)
	// Stopped right after its start, it still removes its socket before
	// it returns (Serve may not have taken the listener yet).
	_, err = os.Lstat(sock)
	assert.True(t, os.IsNotExist(err), "the socket is removed when usrsvcweb stops: %v", err)

	// A regular file in its place is never removed.
	require.NoError(t, os.WriteFile(sock, []byte("mine"), 0o600))
	var out, errb bytes.Buffer
	assert.Equal(t, int(exitcode.InsufficientPermissions), run([]string{"--config", cfgPath}, &out, &errb))
	assert.Contains(t, errb.String(), "exists and is not a socket")
}

func TestTCPWithPassword(t *testing.T) {
	// Not parallel: usrsvcweb sets the process umask while it creates its socket.
	cfgPath, _ := writeConfig(t, "listen = 127.0.0.1:0\nusername = admin\npassword = pass word")
	addr, stop, logs := serve(t, "--config", cfgPath)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.SetBasicAuth("admin", "nope")
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req.SetBasicAuth("admin", "pass word")
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	code, _ := stop()
	assert.Equal(t, 0, code)
	assert.True(t, strings.Contains(logs.String(), "failed login") && strings.Contains(logs.String(), "peer=127.0.0.1:"), logs.String())
}

// The help fits 80 columns and writes long options with two dashes.
func TestHelpStyle(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &stdout, &stderr))
	for _, l := range strings.Split(stdout.String(), "\n") {
		assert.LessOrEqual(t, len([]rune(l)), 80, "help line longer than 80 columns: %q", l)
	}
	assert.NotRegexp(t, regexp.MustCompile(`(?m)(^|[\s,\[])-[a-z]{2,}`), stdout.String(), "a long option with one dash")
}

// usrsvcweb(8) documents every option of the help.
func TestManPageCoversHelp(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../docs/man/usrsvcweb.8.md")
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &stdout, &stderr))
	opts := regexp.MustCompile(`(?m)^  (?:(-\w), )?\s*(--[\w-]+)`).FindAllStringSubmatch(stdout.String(), -1)
	require.NotEmpty(t, opts)
	for _, m := range opts {
		for _, o := range m[1:] {
			if o != "" {
				assert.Contains(t, string(page), "**"+o+"**", "usrsvcweb(8) does not document %s", o)
			}
		}
	}
}
