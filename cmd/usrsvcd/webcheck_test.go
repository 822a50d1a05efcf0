package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkconfig says what the [Web] password is made of, never its value;
// and refuses one that every local account can read.
func TestCheckConfigWebPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "usrsvc.cfg")
	src := "[Main]\npidfile = " + dir + "/d.pid\nstate_dir = " + dir + "/state\n[Web]\nusername = u\npassword = correct horse!\n"
	require.NoError(t, os.WriteFile(cfg, []byte(src), 0o600))
	code, stdout, stderr := runOut("checkconfig", "--config", cfg)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "[Web] password: 14 characters, plain\n")
	assert.NotContains(t, stdout, "correct horse")

	require.NoError(t, os.Chmod(cfg, 0o644))
	code, _, stderr = runOut("checkconfig", "--config", cfg)
	assert.Equal(t, 130, code)
	assert.Contains(t, stderr, cfg+":6: the main config file holds the [Web] password but is readable by group or others")
	assert.Contains(t, stderr, "chmod go-r "+cfg)
}
