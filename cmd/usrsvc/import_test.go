package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// importTestdata is the real-world supervisord configurations of
// testdata/supervisord (where each comes from is in its first lines).
var importTestdata = []string{"sample.conf", "laravel-worker.conf", "celery/supervisord.conf",
	"gunicorn-nginx.conf", "docker.conf", "debian/supervisord.conf"}

// Each real-world configuration converts, with --include, into a
// configuration that passes usrsvcd checkconfig (the same loading of the
// main file, its config_dir and [Web]), both as one file on stdout and
// with -o DIR.
func TestImportTestdata(t *testing.T) {
	t.Parallel()
	for _, file := range importTestdata {
		src := filepath.Join("../../testdata/supervisord", file)
		out := filepath.Join(t.TempDir(), "out")
		for _, args := range [][]string{{"import", "--include", src}, {"import", "--include", "-o", out, src}} {
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			t.Logf("usrsvc %s: %d\n%s", strings.Join(args, " "), code, stderr.String())
			if len(args) == 3 {
				assert.Contains(t, stdout.String(), "[Main]\npidfile = ~/.local/state/usrsvc/usrsvcd.pid\n", file)
			} else {
				assert.Empty(t, stdout.String())
				checkModes(t, out)
			}
			assert.Regexp(t, `usrsvc import: \d+ programs?, \d+ groups?, \d+ keys? not converted`, stderr.String(), file)
			require.Equal(t, 0, code, "%s: %s", file, stderr.String())
		}
	}
}

// checkModes: what import writes is the account's alone.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		if fi.IsDir() {
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), p)
		} else {
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestImportUsage(t *testing.T) {
	t.Parallel()
	call := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, _, stderr := call("import")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, "import takes one supervisord configuration file")
	code, _, _ = call("import", "a", "b")
	assert.Equal(t, 131, code)
	code, _, stderr = call("import", filepath.Join(t.TempDir(), "nope.conf"))
	assert.Equal(t, 136, code)
	assert.Contains(t, stderr, "nope.conf")
	code, _, stderr = call("--include", "status", "all")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, "--include goes with import, not status")

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "usrsvc.d"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "usrsvc.d", "laravel-worker.cfg"), []byte("mine"), 0o600))
	code, _, stderr = call("import", "-o", dir, "../../testdata/supervisord/laravel-worker.conf")
	assert.Equal(t, 136, code)
	assert.Contains(t, stderr, "laravel-worker.cfg exists: usrsvc import does not replace files")
	_, err := os.Stat(filepath.Join(dir, "usrsvc.cfg"))
	assert.True(t, os.IsNotExist(err), "nothing written when one file exists")
}
