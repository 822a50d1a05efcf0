package usrsvc

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestRSSLimitName(t *testing.T) {
	t.Parallel()
	var m Monitor = NewRSSLimit(1)
	assert.Equal(t, "rss_limit", m.Name())
}

// TestRSSLimitRealProcess: a helper holding 80 MiB of private memory fails
// a 30000 kB limit with the measured figure; a sleeping helper passes.
func TestRSSLimitRealProcess(t *testing.T) {
	t.Parallel()
	big := testproc.New(t, "grow-rss", "80")
	big.Start(t)
	small := testproc.New(t, "sleep")
	small.Start(t)
	bigP := liveProcess(t, big.WaitReady(t, 10*time.Second))
	smallP := liveProcess(t, small.WaitReady(t, 10*time.Second))

	smallMem, err := proc.Default().Memory(smallP.PID)
	require.NoError(t, err)
	t.Logf("sleep helper: %+v", smallMem)

	r := NewRSSLimit(30000)
	err = r.Check(context.Background(), bigP)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrMonitorUnavailable)
	m := regexp.MustCompile(`^private memory (\d+) kB above rss_limit 30000 kB$`).FindStringSubmatch(err.Error())
	require.NotNil(t, m, err.Error())
	kb, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, kb, int64(80<<10), "the 80 MiB are counted")
	after, err := proc.Default().Memory(bigP.PID)
	require.NoError(t, err)
	assert.InDelta(t, after.PrivateKB, kb, 4096, "the figure is the measured private memory")

	// Under the limit (with room for the race detector's own memory).
	limit := max(30000, smallMem.PrivateKB*2)
	assert.NoError(t, NewRSSLimit(limit).Check(context.Background(), smallP))
	// The same limit is exceeded by the big one only if it is below 80 MiB.
	if limit < 80<<10 {
		assert.Error(t, NewRSSLimit(limit).Check(context.Background(), bigP))
	}
}

// TestRSSLimitDeadProcess: a process that is gone cannot be checked.
func TestRSSLimitDeadProcess(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	child := h.Start(t)
	p := liveProcess(t, h.WaitReady(t, 10*time.Second))
	require.NoError(t, NewRSSLimit(1<<30).Check(context.Background(), p))
	require.NoError(t, child.Kill())
	_, _ = h.Wait() // reaped: the pid is gone

	err := NewRSSLimit(1).Check(context.Background(), p)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestRSSLimitPIDReused: a process over the limit that is not the
// program's (another start time) is never blamed.
func TestRSSLimitPIDReused(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "grow-rss", "8")
	h.Start(t)
	p := liveProcess(t, h.WaitReady(t, 10*time.Second))
	require.Error(t, NewRSSLimit(1).Check(context.Background(), p))
	p.StartTicks++
	err := NewRSSLimit(1).Check(context.Background(), p)
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
	assert.ErrorContains(t, err, "no longer the program's process")
}

// TestRSSLimitFixture reads a fixture procfs: Private_Clean + Private_Dirty.
func TestRSSLimitFixture(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "42"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "42", "smaps_rollup"), []byte(
		"55d0c0a00000-7ffd1a5ff000 ---p 00000000 00:00 0                          [rollup]\n"+
			"Rss:              120000 kB\n"+
			"Pss:               90000 kB\n"+
			"Shared_Clean:      50000 kB\n"+
			"Shared_Dirty:          0 kB\n"+
			"Private_Clean:     10000 kB\n"+
			"Private_Dirty:     20001 kB\n"), 0o644))
	fs := proc.FS{Root: root}
	p := Process{PID: 42} // no StartTicks: no identity check

	over := &RSSLimit{LimitKB: 30000, fs: fs}
	assert.EqualError(t, over.Check(context.Background(), p), "private memory 30001 kB above rss_limit 30000 kB")
	under := &RSSLimit{LimitKB: 30001, fs: fs}
	assert.NoError(t, under.Check(context.Background(), p))
	off := &RSSLimit{LimitKB: 0, fs: fs}
	assert.NoError(t, off.Check(context.Background(), p))

	err := over.Check(context.Background(), Process{PID: 43})
	assert.ErrorIs(t, err, ErrMonitorUnavailable)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, over.Check(ctx, p), ErrMonitorUnavailable)
}

func TestRSSLimitPermissionDenied(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads every process's smaps_rollup")
	}
	// pid 1 belongs to root and is not ours to read.
	err := NewRSSLimit(1).Check(context.Background(), Process{PID: 1})
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
}
