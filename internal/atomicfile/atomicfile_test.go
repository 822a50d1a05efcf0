package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, n := range []int{0, 1, 511, 512, 513, 4096} {
		data := []byte(strings.Repeat("7", n))
		require.NoError(t, Write(p, data, 0o600))
		got, err := ReadLimit(p, 4096)
		require.NoError(t, err, n)
		assert.Equal(t, data, got, n)
	}
	require.NoError(t, Write(p, []byte(strings.Repeat("7", 4097)), 0o600))
	_, err := ReadLimit(p, 4096)
	assert.True(t, errors.Is(err, syscall.EFBIG), "%v", err)

	// An endless file costs one small read.
	t0 := time.Now()
	_, err = ReadLimit("/dev/zero", 4096)
	assert.True(t, errors.Is(err, syscall.EFBIG), "%v", err)
	assert.Less(t, time.Since(t0), 10*time.Second, "not a read to the end of an endless file")

	// A FIFO without a writer reads as empty, at once.
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	got, err := Read(fifo)
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = Read(filepath.Join(dir, "missing"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}
