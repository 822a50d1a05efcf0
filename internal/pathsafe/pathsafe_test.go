package pathsafe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	assert.NoError(t, Dir(dir))
	assert.NoError(t, Dir(filepath.Join(dir, "not", "yet")), "judged by the nearest existing ancestor")

	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, 0o777))
	err := Dir(shared)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable by other accounts (mode 0777)")
	assert.Contains(t, err.Error(), "chmod go-w "+shared)
	err = Dir(filepath.Join(shared, "logs")) // would be created in it
	assert.ErrorContains(t, err, "writable by other accounts")

	// Below a writable, non-sticky directory: ours can be renamed away.
	mine := filepath.Join(shared, "mine")
	require.NoError(t, os.Mkdir(mine, 0o700))
	assert.ErrorContains(t, Dir(mine), "not sticky")

	// Below a sticky one (/tmp): fine for a directory of ours.
	require.NoError(t, os.Chmod(shared, os.ModeSticky|0o777))
	assert.NoError(t, Dir(mine))
	err = Dir(shared)
	assert.ErrorContains(t, err, "sticky like /tmp")
	assert.ErrorContains(t, err, "use a directory only you can write")

	// A symbolic link to a shared directory is judged by where it points.
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(shared, link))
	assert.ErrorContains(t, Dir(link), "writable by other accounts")
	assert.Error(t, Dir("/tmp"))
}

func TestFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.NoError(t, File(p, fi))
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602} {
		require.NoError(t, os.Chmod(p, mode))
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.ErrorContains(t, File(p, fi), "chmod 600 "+p, "%04o", mode)
	}
	fi, err = os.Stat(dir)
	require.NoError(t, err)
	assert.ErrorContains(t, File(dir, fi), "not a regular file")
}
