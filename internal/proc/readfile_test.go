package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readFile reads to the end of the file, past the 512-byte first read and
// past short reads, and reuses the buffer it is given.
func TestReadFileWhole(t *testing.T) {
	t.Parallel()
	want := bytes.Repeat([]byte("12345 "), 5000)
	path := filepath.Join(t.TempDir(), "children")
	require.NoError(t, os.WriteFile(path, want, 0o600))
	got, err := readFile(path, make([]byte, 3, 7))
	require.NoError(t, err)
	assert.Equal(t, want, got)
	// A /proc file (a seq_file) reads as with os.ReadFile.
	got, err = readFile("/proc/self/mountinfo", nil)
	require.NoError(t, err)
	ref, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.Equal(t, ref, got)
	_, err = readFile(filepath.Join(t.TempDir(), "missing"), nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
	var pe *os.PathError
	assert.ErrorAs(t, err, &pe)
}
