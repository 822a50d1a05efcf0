package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.log")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func TestTailBounded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	for i := 1; i <= 100000; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
	require.NoError(t, f.Close())

	lines, err := Tail(path, 0, 20, 16<<10)
	require.NoError(t, err)
	require.Len(t, lines, 20)
	assert.Equal(t, "line 99981", lines[0])
	assert.Equal(t, "line 100000", lines[19])

	// A bound that cuts a line: the partial first line is dropped.
	// 95 bytes: "line 100000\n" (12) and 7 lines of 11 bytes (77) fit in
	// 89, the 6 bytes before them are the end of "line 99992\n".
	lines, err = Tail(path, 0, 1000, 95)
	require.NoError(t, err)
	require.Len(t, lines, 8)
	for i, l := range lines {
		assert.Equal(t, fmt.Sprintf("line %d", 99993+i), l)
	}
	// A bound that falls exactly on a line start keeps that line.
	lines, err = Tail(path, 0, 1000, 89)
	require.NoError(t, err)
	require.Len(t, lines, 8)
	assert.Equal(t, "line 99993", lines[0])
}

func TestTailAfterOffset(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "old 1\nold 2\n")
	st, err := os.Stat(path)
	require.NoError(t, err)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	fmt.Fprint(f, "new 1\r\nnew 2\nnew 3")
	require.NoError(t, f.Close())

	lines, err := Tail(path, st.Size(), 20, 16<<10)
	require.NoError(t, err)
	assert.Equal(t, []string{"new 1", "new 2", "new 3"}, lines)
	lines, err = Tail(path, st.Size(), 2, 16<<10)
	require.NoError(t, err)
	assert.Equal(t, []string{"new 2", "new 3"}, lines)

	lines, err = Tail(path, 1<<20, 20, 16<<10)
	require.NoError(t, err)
	assert.Nil(t, lines, "nothing after an offset beyond the end")
}

func TestTailEdgeCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lines, err := Tail(writeFile(t, ""), 0, 20, 100)
	require.NoError(t, err)
	assert.Nil(t, lines)
	lines, err = Tail(writeFile(t, "\n\n"), 0, 20, 100)
	require.NoError(t, err)
	assert.Nil(t, lines)
	lines, err = Tail(writeFile(t, strings.Repeat("x", 500)+"\n"), 0, 20, 100)
	require.NoError(t, err)
	assert.Nil(t, lines, "a single line longer than the bound is not returned cut")

	_, err = Tail(filepath.Join(dir, "missing"), 0, 20, 100)
	assert.ErrorIs(t, err, os.ErrNotExist)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err = Tail(fifo, 0, 20, 100) // must not block
	assert.ErrorContains(t, err, "not a regular file")
}

// A log path that is a symbolic link is never followed: not for reading,
// truncating, or appending usrsvcd's own log.
func TestSymlinkNotFollowed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "bashrc")
	require.NoError(t, os.WriteFile(target, []byte("secret\n"), 0o600))
	link := filepath.Join(dir, "app.log")
	require.NoError(t, os.Symlink(target, link))
	_, _, err := OpenRead(link)
	assert.ErrorIs(t, err, ErrSymlink)
	_, err = Tail(link, 0, 10, 100)
	assert.ErrorIs(t, err, ErrSymlink)
	_, _, err = ReadEnd(link, 10)
	assert.ErrorIs(t, err, ErrSymlink)
	_, err = OpenWrite(link)
	assert.ErrorIs(t, err, ErrSymlink)
	_, err = Open(link)
	assert.ErrorIs(t, err, ErrSymlink)
	data, _ := os.ReadFile(target)
	assert.Equal(t, "secret\n", string(data))

	b, size, err := ReadEnd(target, 3)
	require.NoError(t, err)
	assert.Equal(t, "et\n", string(b))
	assert.Equal(t, int64(7), size)
	lines, size, err := TailSize(target, 0, 5, 100)
	require.NoError(t, err)
	assert.Equal(t, []string{"secret"}, lines)
	assert.Equal(t, int64(7), size)
}
