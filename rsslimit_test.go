package usrsvc

import (
	"context"
	"fmt"
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
	var m Monitor = &rssLimit{LimitKB: 1}
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

	r := &rssLimit{LimitKB: 30000}
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
	assert.NoError(t, (&rssLimit{LimitKB: limit}).Check(context.Background(), smallP))
	// The same limit is exceeded by the big one only if it is below 80 MiB.
	if limit < 80<<10 {
		assert.Error(t, (&rssLimit{LimitKB: limit}).Check(context.Background(), bigP))
	}
}

// TestRSSLimitDeadProcess: a process that is gone cannot be checked.
func TestRSSLimitDeadProcess(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	child := h.Start(t)
	p := liveProcess(t, h.WaitReady(t, 10*time.Second))
	require.NoError(t, (&rssLimit{LimitKB: 1 << 30}).Check(context.Background(), p))
	require.NoError(t, child.Kill())
	_, _ = h.Wait() // reaped: the pid is gone

	err := (&rssLimit{LimitKB: 1}).Check(context.Background(), p)
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
	require.Error(t, (&rssLimit{LimitKB: 1}).Check(context.Background(), p))
	p.StartTicks++
	err := (&rssLimit{LimitKB: 1}).Check(context.Background(), p)
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
	assert.ErrorContains(t, err, "no longer the program's process")
}

// writeProcFixture writes a procfs fixture with process 42: its stat (rss
// in pages, field 24) and its smaps_rollup (Private_Clean +
// Private_Dirty = privateKB).
func writeProcFixture(t *testing.T, rssPages, privateKB int64) proc.FS {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "42"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  1 2 3 4 5 6 7 0 0 0\nbtime 1700000000\n"), 0o644))
	stat := fmt.Sprintf("42 (app) S 1 42 42 0 -1 4194560 100 0 0 0 12 34 0 0 20 0 1 0 4200 1234567 %d 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", rssPages)
	require.NoError(t, os.WriteFile(filepath.Join(root, "42", "stat"), []byte(stat), 0o644))
	rollup := fmt.Sprintf("55d0c0a00000-7ffd1a5ff000 ---p 00000000 00:00 0                          [rollup]\n"+
		"Rss:              %d kB\n"+
		"Pss:               90000 kB\n"+
		"Shared_Clean:      50000 kB\n"+
		"Shared_Dirty:          0 kB\n"+
		"Private_Clean:     10000 kB\n"+
		"Private_Dirty:     %d kB\n", rssPages*4, privateKB-10000)
	require.NoError(t, os.WriteFile(filepath.Join(root, "42", "smaps_rollup"), []byte(rollup), 0o644))
	return proc.FS{Root: root}
}

// TestRSSLimitFixture reads a fixture procfs: Private_Clean + Private_Dirty
// is compared with the limit, and the resident set (stat) spares the
// smaps_rollup read when it is well below the limit.
func TestRSSLimitFixture(t *testing.T) {
	t.Parallel()
	if os.Getpagesize() != 4096 {
		t.Skip("the fixture assumes 4 KiB pages")
	}
	fs := writeProcFixture(t, 120000/4, 30001) // 120000 kB resident, 30001 kB private
	p := Process{PID: 42, StartTicks: 4200}

	over := &rssLimit{LimitKB: 30000, fs: fs}
	assert.EqualError(t, over.Check(context.Background(), p), "private memory 30001 kB above rss_limit 30000 kB")
	under := &rssLimit{LimitKB: 30001, fs: fs}
	assert.NoError(t, under.Check(context.Background(), p))
	off := &rssLimit{LimitKB: 0, fs: fs}
	assert.NoError(t, off.Check(context.Background(), p))

	// Resident 1000 kB, far below a 30000 kB limit: smaps_rollup (which
	// claims more) is not read.
	small := writeProcFixture(t, 1000/4, 50000)
	assert.NoError(t, (&rssLimit{LimitKB: 30000, fs: small}).Check(context.Background(), p))
	// Within the counters' slack of the limit: it is read.
	near := writeProcFixture(t, (30000-rssSlackKB+4)/4, 50000)
	assert.ErrorContains(t, (&rssLimit{LimitKB: 30000, fs: near}).Check(context.Background(), p), "private memory 50000 kB")

	err := over.Check(context.Background(), Process{PID: 43})
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
	assert.ErrorIs(t, err, os.ErrNotExist)
	err = over.Check(context.Background(), Process{PID: 42, StartTicks: 4201})
	assert.ErrorIs(t, err, ErrMonitorUnavailable, "another process now has the pid")

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
	err := (&rssLimit{LimitKB: 1}).Check(context.Background(), Process{PID: 1})
	assert.ErrorIs(t, err, ErrMonitorUnavailable)
}
