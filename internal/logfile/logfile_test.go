package logfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reopen follows a rotation: lines after it land in a new file at the path.
func TestReopenAfterRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.log")
	lf, err := Open(path)
	require.NoError(t, err)
	defer lf.Close()
	lf.Write([]byte("before\n"))
	require.NoError(t, os.Rename(path, path+".1"))
	lf.Write([]byte("still old\n"))
	require.NoError(t, lf.Reopen())
	lf.Write([]byte("after\n"))

	old, _ := os.ReadFile(path + ".1")
	assert.Equal(t, "before\nstill old\n", string(old))
	cur, _ := os.ReadFile(path)
	assert.Equal(t, "after\n", string(cur))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// A log that cannot be written never fails the writer.
	require.NoError(t, lf.Close())
	n, err := lf.Write([]byte("lost\n"))
	assert.NoError(t, err)
	assert.Equal(t, 5, n)
}
