package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// usrsvcdHome runs the test binary as usrsvcd with HOME=home (so the
// default state directory is home's).
func usrsvcdHome(t *testing.T, home string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMain+"=1", "HOME="+home, "USRSVC_CONFIG=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// A broken configuration never locks the operator out: usrsvcd status and
// stop find the daemon through the state directory, whatever the config
// holds (a typo, nothing at all, garbage); only a config refused for safety
// is refused by them too. A refused reread is logged once.
func TestDaemonControlWithBrokenConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	cfgPath := filepath.Join(home, "usrsvc.cfg")
	a := testproc.New(t, "sleep")
	good := "[Main]\npidfile = " + home + "/usrsvcd.pid\nusrsvcd_stdout = " + home + "/usrsvcd.log\n\n" +
		strings.ReplaceAll(dprogram("a", a.CommandLine()), "DIR", home)
	require.NoError(t, os.WriteFile(cfgPath, []byte(good), 0o600))
	ctl := func(args ...string) (int, string) {
		return usrsvcdHome(t, home, append([]string{"--config", cfgPath}, args...)...)
	}
	code, out := ctl("start")
	require.Equal(t, 0, code, out)
	data, err := os.ReadFile(filepath.Join(home, "usrsvcd.pid"))
	require.NoError(t, err)
	dpid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, err)
	t.Cleanup(func() {
		if pidAlive(dpid) {
			syscall.Kill(dpid, syscall.SIGKILL)
		}
	})
	pa := onePID(t, a)

	// Two typos: status answers, with the problems as warnings (file:line).
	broken := good + "autorestrat = false\n[Program:b]\ncommand = x\nnumprocs = many\n"
	require.NoError(t, os.WriteFile(cfgPath, []byte(broken), 0o600))
	code, out = ctl("status")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "usrsvcd is running (pid "+strconv.Itoa(dpid)+")")
	assert.Contains(t, out, cfgPath+":11: unknown key autorestrat")
	assert.Contains(t, out, cfgPath+":14: numprocs = \"many\" is not a whole number")

	// The daemon refuses the broken reread in one log line naming every problem.
	require.NoError(t, syscall.Kill(dpid, syscall.SIGUSR1))
	logPath := filepath.Join(home, "usrsvcd.log")
	var failed []string
	waitFor(t, 10*time.Second, func() bool {
		data, _ := os.ReadFile(logPath)
		failed = failed[:0]
		for _, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, "reload") && strings.Contains(l, "autorestrat") {
				failed = append(failed, l)
			}
		}
		return len(failed) > 0
	}, "the refused reread logged")
	time.Sleep(200 * time.Millisecond) // a second line, if any, comes right after the first
	data, _ = os.ReadFile(logPath)
	assert.Equal(t, 1, strings.Count(string(data), "autorestrat"), "one line for one refused reread:\n%s", data)
	assert.Contains(t, failed[0], `:14: numprocs = \"many\" is not a whole number`)

	// No config at all: the default state directory ([Main] has no state_dir).
	require.NoError(t, os.Rename(cfgPath, cfgPath+".away"))
	code, out = ctl("status")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "config file not found")
	assert.Contains(t, out, filepath.Join(home, ".local", "state", "usrsvc"))

	// Refused for safety: refused by status and stop too; the daemon runs on.
	require.NoError(t, os.Rename(cfgPath+".away", cfgPath))
	require.NoError(t, os.Chmod(cfgPath, 0o620))
	code, out = ctl("stop")
	assert.Equal(t, 130, code, out)
	assert.Contains(t, out, "chmod go-w "+cfgPath)
	code, _ = ctl("status")
	assert.Equal(t, 130, code)
	assert.True(t, pidAlive(dpid))

	// Garbage: stop still stops the daemon; its program keeps running.
	require.NoError(t, os.WriteFile(cfgPath, []byte("\xff\xfe[Main\x00\n= =\n"), 0o600))
	require.NoError(t, os.Chmod(cfgPath, 0o600))
	code, out = ctl("stop")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "usrsvcd stopped")
	waitFor(t, 5*time.Second, func() bool { return !pidAlive(dpid) }, "usrsvcd gone")
	code, out = ctl("status")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "usrsvcd is not running")
	assert.Equal(t, []int{pa}, a.PIDs(), "the program runs on")

	// What must load still refuses: start, restart, checkconfig, reread.
	for _, action := range []string{"start", "restart", "checkconfig", "reread"} {
		code, out = ctl(action)
		assert.Equal(t, 130, code, action+": "+out)
	}
}
