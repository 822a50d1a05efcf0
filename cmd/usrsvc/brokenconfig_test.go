package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A broken configuration never locks the operator out: stop and status act
// on every program they can find, print the problems as warnings with
// file:line and return the action's code; only starting a broken program is
// refused (130), and a config refused for safety is refused by everything.
func TestBrokenConfigStopAndStatus(t *testing.T) {
	t.Parallel()
	web := testproc.New(t, "sleep")
	job := testproc.New(t, "sleep")
	w := newWorld(t, program("web", web.CommandLine())+program("job", job.CommandLine()))
	for _, name := range []string{"web", "job"} {
		code, _, stderr := w.run("start", name)
		require.Equal(t, 0, code, stderr)
	}
	good, err := os.ReadFile(w.cfg)
	require.NoError(t, err)

	// A typo in web's own section (line 11), and a program without a command.
	text := strings.Replace(string(good), "[Program:job]", "autorestrat = false\n\n[Program:job]", 1) +
		"[Program:nocmd]\npidfile = /tmp/nocmd.pid\nstdout = /tmp/nocmd.log\n"
	require.NoError(t, os.WriteFile(w.cfg, []byte(text), 0o600))
	warning := w.cfg + ":11: unknown key autorestrat in [Program:web]"

	code, stdout, stderr := w.run("status", "web")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "web is running")
	assert.Contains(t, stderr, "warning: "+warning)

	code, stdout, stderr = w.run("status", "all")
	assert.Equal(t, 1, code, "nocmd cannot be found: "+stdout+stderr)
	assert.Contains(t, stdout, "job is running")
	assert.Contains(t, stdout, "web is running")
	assert.Contains(t, stderr, "cannot tell how to find nocmd")

	code, _, stderr = w.run("start", "web")
	assert.Equal(t, 130, code, "start of a program whose own section is broken")
	assert.Contains(t, stderr, warning)
	code, _, stderr = w.run("restart", "job")
	assert.Equal(t, 0, code, "restart of a valid program while another is broken: "+stderr)

	code, stdout, stderr = w.run("stop", "web")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "Stopped web")
	assert.Empty(t, web.PIDs())
	code, _, _ = w.run("--json", "stop", "all")
	assert.Equal(t, 1, code, "nocmd cannot be stopped")
	assert.Empty(t, job.PIDs())
	code, _, _ = w.run("status", "job")
	assert.Equal(t, 1, code, "status: not running")

	// Refused for safety: every command refuses.
	require.NoError(t, os.Chmod(w.cfg, 0o660))
	for _, action := range []string{"stop", "status"} {
		code, _, stderr = w.run(action, "web")
		assert.Equal(t, 130, code, action)
		assert.Contains(t, stderr, "chmod go-w")
	}
	// No config: nothing to act on.
	require.NoError(t, os.Remove(w.cfg))
	code, _, stderr = w.run("status", "all")
	assert.Equal(t, 130, code)
	assert.Contains(t, stderr, "config file not found")
}

// A config file that cannot be opened for want of file descriptors is not a
// broken configuration: code 11 (try again) with the fix, not 130.
func TestConfigUnreadableForLackOfFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, program("web", "/bin/sleep 1"))
	argv := testproc.WithOpenFileLimit(4, os.Args[0], "--config", w.cfg, "status", "web")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), asMain+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 11, ee.ExitCode(), "%s", out)
	assert.Contains(t, string(out), "too many open files")
	assert.Contains(t, string(out), "LimitNOFILE")
}
