package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/usrsvc/usrsvc/internal/home"
)

var update = flag.Bool("update", false, "rewrite the testdata/golden/*.golden files")

// copyTree copies testdata/golden/name into a temp dir with safe modes
// (config files must not be group/other-writable) and returns the temp dir.
func copyTree(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "golden", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	require.NoError(t, err)
	return dst
}

// runOut runs run and returns the code and the outputs.
func runOut(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCheckConfigGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int
	}{
		{"several_errors", 130},
		{"spread_over_config_dir", 130},
		{"valid", 0},
		{"missing", 130},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dir string
			if tt.name == "missing" {
				dir = t.TempDir()
			} else {
				dir = copyTree(t, tt.name)
			}
			t.Setenv("USRSVC_CONFIG", "")
			code, stdout, stderr := runOut("checkconfig", "--config", filepath.Join(dir, "usrsvc.cfg"))
			assert.Equal(t, tt.code, code)
			got := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, stdout, stderr)
			got = strings.ReplaceAll(got, dir, "$DIR")
			if home, err := home.Dir(); err == nil && len(home) > 1 {
				got = strings.ReplaceAll(got, home+"/", "$HOME/")
			}
			golden := filepath.Join("testdata", "golden", tt.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

func TestRunArgs(t *testing.T) {
	dir := copyTree(t, "valid")
	cfg := filepath.Join(dir, "usrsvc.cfg")
	t.Run("flags after the action", func(t *testing.T) {
		code, stdout, stderr := runOut("checkconfig", "--config", cfg)
		assert.Equal(t, 0, code, stderr)
		assert.Equal(t, "config OK: 2 programs from 2 files ("+cfg+")\n", stdout)
	})
	t.Run("flags before the action", func(t *testing.T) {
		code, stdout, _ := runOut("-config="+cfg, "--foreground", "checkconfig")
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "config OK")
	})
	t.Run("USRSVC_CONFIG", func(t *testing.T) {
		t.Setenv("USRSVC_CONFIG", cfg)
		code, stdout, _ := runOut("checkconfig")
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "("+cfg+")")
	})
	t.Run("help", func(t *testing.T) {
		code, stdout, stderr := runOut("--help")
		assert.Equal(t, 0, code)
		assert.Empty(t, stderr)
		assert.Contains(t, stdout, "usage: usrsvcd [options] [start|stop|restart|status|checkconfig|reread]")
		assert.Contains(t, stdout, "--foreground")
	})
	t.Run("unknown flag", func(t *testing.T) {
		code, _, stderr := runOut("--bogus", "checkconfig")
		assert.Equal(t, 131, code)
		assert.Contains(t, stderr, "unknown option --bogus")
	})
	t.Run("unknown action", func(t *testing.T) {
		code, _, stderr := runOut("chekconfig")
		assert.Equal(t, 131, code)
		assert.Contains(t, stderr, `unknown action "chekconfig"; did you mean checkconfig?`)
	})
	t.Run("two actions", func(t *testing.T) {
		code, _, stderr := runOut("start", "stop")
		assert.Equal(t, 131, code)
		assert.Contains(t, stderr, "one action expected")
	})
	t.Run("status without a daemon", func(t *testing.T) {
		state := t.TempDir()
		text, err := os.ReadFile(cfg)
		require.NoError(t, err)
		own := filepath.Join(dir, "own.cfg")
		require.NoError(t, os.WriteFile(own, []byte(strings.Replace(string(text), "[Main]", "[Main]\nstate_dir = "+state, 1)), 0o600))
		code, stdout, _ := runOut("--config", own, "status")
		assert.Equal(t, 1, code)
		assert.Contains(t, stdout, "not running")
	})
}
