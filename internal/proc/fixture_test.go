package proc

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture is testdata/fixture: a procfs tree with btime 1700000000 and
//
//	1   init, two args, status (real uid 1000), smaps_rollup, exe "(deleted)"
//	2   kthreadd, empty cmdline
//	42  comm "a) (b", cmdline with trailing NULs, smaps only (no rollup)
//	43  zombie child of 42, exit status 768 (exit code 3)
//	44  stat too short            (garbled: skipped, counted)
//	45  44-field stat (no exit_code), setproctitle-style cmdline
//	46  no cmdline                (vanished mid-read: skipped silently)
//	47  ppid "x"                  (garbled: skipped, counted)
//
// plus non-process entries (self, sys, meminfo, stat) that are not pids.
var fixture = FS{Root: "testdata/fixture"}

var fixtureBoot = time.Unix(1700000000, 0)

// fixtureOwner is the owner of the fixture's process directories: whoever
// checked the tree out.
func fixtureOwner(t *testing.T) int {
	fi, err := os.Stat("testdata/fixture/1")
	require.NoError(t, err)
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func TestFixtureSnapshot(t *testing.T) {
	owner := fixtureOwner(t)
	for _, uid := range []int{-1, owner} {
		s, err := fixture.Snapshot(uid)
		require.NoError(t, err)
		var pids []int
		for _, p := range s.Sorted() {
			pids = append(pids, p.PID)
		}
		assert.Equal(t, []int{1, 2, 42, 43, 45}, pids)
		assert.Equal(t, 2, s.Skipped, "44 and 47 are garbled; 46 vanished")
		assert.WithinDuration(t, time.Now(), s.Taken, time.Minute)

		init := s.Procs[1]
		assert.Equal(t, []string{"/sbin/init", "splash"}, init.Args)
		assert.Equal(t, "/sbin/init splash", init.Title)
		assert.Equal(t, owner, init.UID)
		assert.Equal(t, fixtureBoot.Add(10*time.Millisecond), init.Started)
		assert.Equal(t, uint64(150), init.UTime)
		assert.Equal(t, uint64(250), init.STime)
		assert.Equal(t, int64(2000), init.RSSPages)

		k := s.Procs[2]
		assert.Nil(t, k.Args)
		assert.Equal(t, "", k.Title)
		assert.Equal(t, "kthreadd", k.Comm)
		assert.Equal(t, "2 (S) [kthreadd]", k.String())

		p := s.Procs[42]
		assert.Equal(t, "a) (b", p.Comm)
		assert.Equal(t, byte('R'), p.State)
		assert.Equal(t, "python3 app.py --x a b", p.Title)
		assert.Equal(t, fixtureBoot.Add(42*time.Second), p.Started)
		assert.False(t, p.Zombie())

		z := s.Procs[43]
		assert.True(t, z.Zombie())
		assert.Equal(t, 768, z.ExitCode)
		assert.True(t, z.ExitStatus().Exited())
		assert.Equal(t, 3, z.ExitStatus().ExitStatus())

		old := s.Procs[45]
		assert.Equal(t, 0, old.ExitCode)
		assert.Equal(t, "nginx: master process /usr/sbin/nginx", old.Title)

		assert.Equal(t, []int{1, 2}, pidsOf(s.Children(0)))
		assert.Equal(t, []int{42, 45}, pidsOf(s.Children(1)))
		assert.Equal(t, []int{43}, pidsOf(s.Children(42)))
		assert.Empty(t, s.Children(43))
		assert.Equal(t, []int{42, 43, 45}, pidsOf(s.Descendants(1)))
	}

	s, err := fixture.Snapshot(owner + 1)
	require.NoError(t, err)
	assert.Empty(t, s.Procs, "other owners are skipped")
	assert.Zero(t, s.Skipped, "other owners' files are never read, not even garbled ones")
}

func pidsOf(ps []*Process) []int {
	out := []int{}
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestFixtureOne(t *testing.T) {
	p, err := fixture.Process(42)
	require.NoError(t, err)
	assert.Equal(t, "python3 app.py --x a b", p.Title)
	assert.Equal(t, 1, p.PPID)

	p, err = fixture.Stat(42)
	require.NoError(t, err)
	assert.Equal(t, uint64(4200), p.StartTicks)
	assert.Empty(t, p.Title, "Stat does not read cmdline")

	for _, pid := range []int{99, 0, -1} {
		_, err = fixture.Process(pid)
		assert.ErrorIs(t, err, os.ErrNotExist, "pid %d", pid)
		_, err = fixture.Stat(pid)
		assert.ErrorIs(t, err, os.ErrNotExist, "pid %d", pid)
	}
	_, err = fixture.Process(46)
	assert.ErrorIs(t, err, os.ErrNotExist, "cmdline gone: the process is gone")
	p, err = fixture.Stat(46)
	require.NoError(t, err, "stat alone is there")
	assert.Equal(t, "vanishing", p.Comm)

	_, err = fixture.Process(44)
	assert.ErrorIs(t, err, ErrFormat)
	_, err = fixture.Stat(47)
	assert.ErrorIs(t, err, ErrFormat)
}

func TestFixtureFiles(t *testing.T) {
	exe, err := fixture.Exe(1)
	require.NoError(t, err)
	assert.Equal(t, "/usr/bin/init", exe)
	_, err = fixture.Exe(2)
	assert.ErrorIs(t, err, os.ErrNotExist)

	m, err := fixture.Memory(1)
	require.NoError(t, err)
	assert.Equal(t, Memory{RSSKB: 1708, PrivateKB: 240}, m)
	m, err = fixture.Memory(42)
	require.NoError(t, err, "falls back to smaps")
	assert.Equal(t, Memory{RSSKB: 364, PrivateKB: 70}, m)
	_, err = fixture.Memory(99)
	assert.ErrorIs(t, err, os.ErrNotExist)

	uid, err := fixture.Status(1)
	require.NoError(t, err)
	assert.Equal(t, 1000, uid)
	_, err = fixture.Status(42)
	assert.ErrorIs(t, err, os.ErrNotExist)

	sig, err := fixture.Signals(1)
	require.NoError(t, err)
	assert.True(t, Has(sig.Ignored, 15))
	assert.True(t, Has(sig.Blocked, 17))

	bt, err := fixture.BootTime()
	require.NoError(t, err)
	assert.Equal(t, fixtureBoot, bt)

	_, err = FS{Root: "testdata/nonexistent"}.Snapshot(-1)
	assert.Error(t, err)
	_, err = FS{Root: "testdata/nonexistent"}.BootTime()
	assert.ErrorIs(t, err, os.ErrNotExist)
}
