package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
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

// Lines lost to a full disk are counted and reported by the first line
// that can be written again, in its own line.
func TestLostLinesReported(t *testing.T) {
	t.Parallel()
	lf := &File{path: "/dev/full"} // every write: ENOSPC
	require.NoError(t, lf.Reopen())
	defer lf.Close()
	for i := 0; i < 3; i++ {
		n, err := lf.Write([]byte("lost line\n"))
		assert.NoError(t, err)
		assert.Equal(t, 10, n)
	}
	lf.path = filepath.Join(t.TempDir(), "d.log")
	require.NoError(t, lf.Reopen())
	lf.Write([]byte("back\n"))
	lf.Write([]byte("again\n"))
	data, err := os.ReadFile(lf.path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	require.Len(t, lines, 4, string(data))
	assert.Regexp(t, `^\S+ usrsvc: 3 log lines lost \(no space left on device\)$`, lines[0])
	assert.Equal(t, []string{"back", "again", ""}, lines[1:])
}

// On a real full file system (root: a tmpfs), a line cut short by the
// failure is ended before the report, and the custom report is used.
func TestLostLinesOnFullDisk(t *testing.T) {
	t.Parallel()
	dir := testproc.Tmpfs(t, 64<<10)
	path := filepath.Join(dir, "d.log")
	lf, err := Open(path)
	require.NoError(t, err)
	defer lf.Close()
	lf.Lost = func(n int, err error) []byte { return []byte(fmt.Sprintf("LOST %d %v\n", n, err)) }
	line := strings.Repeat("x", 999) + "\n"
	lf.Write([]byte(line)) // the file's first page, 3 KiB of it still free
	free := testproc.Fill(t, dir)
	for i := 0; i < 20; i++ { // the page fills, a line is cut, the rest fail
		lf.Write([]byte(line))
	}
	free()
	lf.Write([]byte("back\n"))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	assert.Equal(t, "back", lines[len(lines)-1])
	assert.Regexp(t, `^LOST \d+ no space left on device$`, lines[len(lines)-2])
	cut := 0
	for _, l := range lines[:len(lines)-2] {
		if l != strings.Repeat("x", 999) {
			cut++
			assert.Empty(t, strings.Trim(l, "x"), "a cut line holds only what was written")
		}
	}
	assert.Equal(t, 1, cut, "the line cut by the full disk ends before the report")
	assert.Regexp(t, `^LOST 1[67] `, lines[len(lines)-2])
}
