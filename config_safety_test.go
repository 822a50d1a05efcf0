package usrsvc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A log or pidfile in a directory other accounts can write is refused,
// with the fix: only that program is broken; stop and status still act.
func TestConfigRefusesSharedDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, os.ModeSticky|0o777))
	cfgPath := filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte("[Main]\npidfile = "+dir+"/usrsvcd.pid\nstate_dir = "+dir+"/state\n"+
		"[Program:bad]\ncommand = /bin/sleep 100\npidfile = "+dir+"/bad.pid\nstdout = "+shared+"/bad.log\n"+
		"[Program:good]\ncommand = /bin/sleep 100\npidfile = "+dir+"/good.pid\nstdout = "+dir+"/good.log\n"), 0o600))
	cfg, err := LoadConfig(cfgPath)
	require.Error(t, err)
	assert.Contains(t, err.Error(), cfgPath+":7: [Program:bad] stdout "+shared+"/bad.log: directory "+shared+
		" is writable by other accounts (mode 0777, sticky like /tmp)")
	assert.Contains(t, err.Error(), "use a directory only you can write")
	require.NotNil(t, cfg, "not a refusal for safety of the whole config: stop and status still act")
	require.Len(t, cfg.Broken, 1)
	assert.Equal(t, "bad", cfg.Broken[0].Name)
	assert.NotNil(t, cfg.Program("good"))

	// [Main] too.
	require.NoError(t, os.WriteFile(cfgPath, []byte("[Main]\npidfile = "+shared+"/usrsvcd.pid\nstate_dir = "+dir+"/state\n"), 0o600))
	_, err = LoadConfig(cfgPath)
	assert.ErrorContains(t, err, cfgPath+":1: [Main] pidfile "+shared+"/usrsvcd.pid: directory "+shared)
}
