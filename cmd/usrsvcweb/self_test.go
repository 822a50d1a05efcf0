package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// usrsvcweb run by usrsvcd as one of its programs, as in
// examples/cfg/50-usrsvcweb.cfg, driven by the real supervisorctl: stop
// all and restart all leave it running (it says it skipped itself), a
// stop of its own name is refused with the reason, and a restart of
// itself through the API brings it back, under a new pid, not stopped by
// hand.
func TestSelfUnderUsrsvcd(t *testing.T) {
	ctl := needTool(t, "supervisorctl")
	if testing.Short() {
		t.Skip("builds usrsvcd and runs it")
	}
	dir := t.TempDir()
	usrsvcd := filepath.Join(dir, "usrsvcd")
	build := exec.Command("go", "build", "-o", usrsvcd, "github.com/usrsvc/usrsvc/cmd/usrsvcd")
	built, err := build.CombinedOutput()
	require.NoError(t, err, "building usrsvcd: %s", built)
	exe, err := os.Executable()
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "usrsvc.cfg")
	sleeper := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	webToken := "web-" + strings.TrimPrefix(sleeper.Token, "tp-sleep-")
	cfg := fmt.Sprintf(`[Main]
pidfile = %[1]s/usrsvcd.pid
state_dir = %[1]s/state
usrsvcd_stdout = %[1]s/usrsvcd.log
[Program:usrsvcweb]
command = %[2]s --config %[3]s
pidfile = %[1]s/usrsvcweb.pid
stdout = %[1]s/usrsvcweb.log
success_seconds = 1
term_to_kill_seconds = 5
  [[Env]]
  %[4]s = 1
  TOKEN = %[5]s
[Program:sleeper]
command = %[6]s
pidfile = %[1]s/sleeper.pid
stdout = %[1]s/sleeper.log
success_seconds = 0.3
`, dir, exe, cfgPath, asMain, webToken, sleeper.CommandLine())
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	env := append(os.Environ(), "HOME="+dir)
	daemon := func(action string) {
		cmd := exec.Command(usrsvcd, "--config", cfgPath, action)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "usrsvcd %s: %s", action, out)
	}
	m, err := usrsvc.NewManager(mustLoad(t, cfgPath), usrsvc.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		daemon("stop")
		m.DoAll(context.Background(), usrsvc.ActionStop, nil, true)
	})
	daemon("start")
	sock := filepath.Join(dir, "state", "usrsvcweb.sock")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(ctl, append([]string{"-s", "unix://" + sock}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	webPid := func() int {
		st, err := m.Do(context.Background(), usrsvc.ActionStatus, "usrsvcweb")
		if err != nil || !st.Running {
			return 0
		}
		return st.Process.PID
	}
	testproc.WaitFor(t, 60*time.Second, func() bool {
		out, _ := run("status")
		return strings.Contains(out, "sleeper") && strings.Contains(out, "RUNNING")
	}, "usrsvcd started usrsvcweb, which answers")
	testproc.WaitFor(t, 30*time.Second, func() bool {
		out, _ := run("status", "sleeper")
		return strings.Contains(out, "RUNNING")
	}, "usrsvcd started sleeper")
	pid := webPid()
	require.NotZero(t, pid)
	var out string

	out, _ = run("stop", "all")
	assert.Contains(t, out, "sleeper: stopped")
	assert.Contains(t, out, "usrsvcweb: skipped: it is this usrsvcweb")
	assert.Equal(t, pid, webPid(), "usrsvcweb still runs, the same process")

	out, _ = run("restart", "all")
	assert.Contains(t, out, "sleeper: started")
	assert.Contains(t, out, "usrsvcweb: skipped")
	assert.Equal(t, pid, webPid(), "restart all leaves it running")

	out, code := run("stop", "usrsvcweb")
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "usrsvcweb is this usrsvcweb, which serves this request")
	assert.Contains(t, out, "usrsvc stop usrsvcweb")
	assert.Equal(t, pid, webPid())

	// The page offers no Stop on its row.
	c := unixClient(sock)
	resp, err := c.Get("http://localhost/program/usrsvcweb")
	require.NoError(t, err)
	body := readBody(t, resp)
	assert.Contains(t, body, `class="btn-restart"`)
	assert.NotContains(t, body, `class="btn-stop"`)

	// A restart of itself: answered, then back under a new pid.
	resp, err = c.Post("http://localhost/api/v1/programs/usrsvcweb/restart", "", nil)
	require.NoError(t, err)
	body = readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, "usrsvcd starts it again")
	testproc.WaitFor(t, 60*time.Second, func() bool {
		p := webPid()
		if p == 0 || p == pid {
			return false
		}
		out, _ := run("status", "sleeper")
		return strings.Contains(out, "RUNNING")
	}, "usrsvcweb back under a new pid, answering")
	st, err := m.Do(context.Background(), usrsvc.ActionStatus, "usrsvcweb")
	require.NoError(t, err)
	assert.NotEqual(t, usrsvc.StateStoppedByHand, st.State, "not left stopped by hand")

	// From a shell, a stop still works.
	_, err = m.Do(context.Background(), usrsvc.ActionStop, "usrsvcweb")
	require.NoError(t, err)
	_ = syscall.Kill(pid, 0)
}

func mustLoad(t *testing.T, path string) *usrsvc.Config {
	cfg, err := usrsvc.LoadConfig(path)
	require.NoError(t, err)
	return cfg
}

func readBody(t *testing.T, resp *http.Response) string {
	defer resp.Body.Close()
	var b strings.Builder
	_, err := fmt.Fprint(&b, "")
	require.NoError(t, err)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
