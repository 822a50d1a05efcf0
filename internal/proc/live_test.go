package proc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}

const readyTimeout = 20 * time.Second

var live = proc.Default()

func TestLiveSnapshotSelf(t *testing.T) {
	s, err := live.Snapshot(os.Getuid())
	require.NoError(t, err)
	me := s.Procs[os.Getpid()]
	require.NotNil(t, me, "own pid in the snapshot")
	assert.Equal(t, os.Getppid(), me.PPID)
	assert.Equal(t, os.Geteuid(), me.UID)
	assert.Equal(t, proc.Title(os.Args), me.Title)
	assert.Equal(t, os.Args, me.Args)
	assert.False(t, me.Zombie())
	assert.Contains(t, "RS", string(me.State))
	assert.True(t, me.Started.Before(time.Now()), "started %v", me.Started)
	assert.True(t, me.Started.After(time.Now().Add(-time.Hour)), "started %v", me.Started)
	assert.Positive(t, me.RSSPages)
	assert.Zero(t, s.Skipped)
	for _, p := range s.Procs {
		assert.Equal(t, os.Getuid(), p.UID, "only our processes")
	}

	// Threads are not processes.
	runtime.LockOSThread() // make sure there are a few threads
	defer runtime.UnlockOSThread()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if tid != os.Getpid() {
			assert.NotContains(t, s.Procs, tid, "thread %d listed", tid)
		}
	}

	all, err := live.Snapshot(-1)
	require.NoError(t, err)
	assert.Contains(t, all.Procs, os.Getpid())
	assert.Contains(t, all.Procs, 1)

	none, err := live.Snapshot(os.Getuid() + 54321)
	require.NoError(t, err)
	assert.NotContains(t, none.Procs, os.Getpid())
}

func TestLiveHelperInSnapshot(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "spawn-child")
	before := time.Now()
	p := h.Start(t)
	pid := h.WaitReady(t, readyTimeout)
	after := time.Now()
	require.Equal(t, p.Pid, pid)

	s, err := live.Snapshot(os.Getuid())
	require.NoError(t, err)
	hp := s.Procs[pid]
	require.NotNil(t, hp)
	assert.Equal(t, os.Getpid(), hp.PPID)
	assert.Equal(t, proc.Title(h.Argv), hp.Title)
	assert.Equal(t, h.Argv, hp.Args)
	// btime has a one-second resolution: Started may be up to 1 s early.
	assert.False(t, hp.Started.Before(before.Add(-1100*time.Millisecond)), "started %v, before %v", hp.Started, before)
	assert.False(t, hp.Started.After(after), "started %v, after %v", hp.Started, after)

	kids := s.Children(pid)
	require.Len(t, kids, 1)
	assert.Contains(t, kids[0].Title, h.Token)
	assert.Contains(t, s.Children(os.Getpid()), hp)
	assert.Equal(t, kids, s.Descendants(pid))

	one, err := live.Process(pid)
	require.NoError(t, err)
	assert.Equal(t, hp.StartTicks, one.StartTicks)
	assert.Equal(t, hp.Started, one.Started)
	assert.Equal(t, hp.Title, one.Title)
	st, err := live.Stat(pid)
	require.NoError(t, err)
	assert.Equal(t, hp.StartTicks, st.StartTicks)
	assert.Equal(t, hp.UID, st.UID)
	assert.Empty(t, st.Args)
}

func TestLiveFiles(t *testing.T) {
	t.Parallel()
	pid := os.Getpid()
	exe, err := live.Exe(pid)
	require.NoError(t, err)
	want, err := os.Executable()
	require.NoError(t, err)
	assert.Equal(t, want, exe)

	uid, err := live.Status(pid)
	require.NoError(t, err)
	assert.Equal(t, os.Getuid(), uid)

	m, err := live.Memory(pid)
	require.NoError(t, err)
	assert.Positive(t, m.RSSKB)
	assert.Positive(t, m.PrivateKB)
	assert.LessOrEqual(t, m.PrivateKB, m.RSSKB)

	sig, err := live.Signals(pid)
	require.NoError(t, err)
	assert.True(t, proc.Has(sig.Caught, int(syscall.SIGURG)), "the Go runtime catches SIGURG")

	bt, err := live.BootTime()
	require.NoError(t, err)
	assert.True(t, bt.Before(time.Now()))
}

func TestLiveGone(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	pid := cmd.Process.Pid // exited and reaped
	_, err := live.Process(pid)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = live.Stat(pid)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = live.Exe(pid)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = live.Memory(pid)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = live.Status(pid)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = proc.PidfdOpen(pid)
	assert.Error(t, err)
}

func TestLiveZombie(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "exit-after", "0s", "3")
	p := h.Start(t) // our child: a zombie until the cleanup reaps it
	var z *proc.Process
	require.Eventually(t, func() bool {
		var err error
		z, err = live.Process(p.Pid)
		return err == nil && z.Zombie()
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, byte('Z'), z.State)
	assert.True(t, z.ExitStatus().Exited())
	assert.Equal(t, 3, z.ExitStatus().ExitStatus())
	assert.Empty(t, z.Title, "a zombie has no cmdline")
	assert.Empty(t, h.PIDs(), "a zombie is not a live helper")
	_, err := live.Memory(p.Pid)
	assert.ErrorIs(t, err, os.ErrNotExist, "a zombie has no memory left")
	_, err = live.Status(p.Pid)
	assert.NoError(t, err, "but it still has a status")
}

func TestPidfdNonChild(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	pid := h.Detach(t)
	p, err := live.Process(pid)
	require.NoError(t, err)
	require.NotEqual(t, os.Getpid(), p.PPID, "not our child")

	fd, err := proc.PidfdOpen(pid)
	require.NoError(t, err)
	defer fd.Close()
	assert.Positive(t, fd.Fd())
	assert.False(t, fd.Exited())

	// A deadline while it runs.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	err = fd.Wait(ctx)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)

	// Cancellation from another goroutine.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	err = fd.Wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)

	// Already cancelled: returns at once.
	err = fd.Wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, fd.Exited())

	// Exit after a kill is seen promptly; a later deadline does not matter.
	done := make(chan error, 1)
	go func() { done <- fd.Wait(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	killed := time.Now()
	require.NoError(t, fd.Signal(syscall.SIGKILL))
	select {
	case err := <-done:
		require.NoError(t, err)
		t.Logf("SIGKILL -> Wait returned in %v", time.Since(killed))
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after SIGKILL")
	}
	assert.True(t, fd.Exited())
	assert.NoError(t, fd.Wait(context.Background()), "Wait after exit returns at once")
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, fd.Wait(ctx), "exited wins over a done ctx")

	require.NoError(t, fd.Close())
	assert.Error(t, fd.Wait(context.Background()), "closed")
	assert.False(t, fd.Exited())
	assert.Error(t, fd.Signal(0))
}

func TestPidfdCloseWakesWait(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	pid := h.Detach(t)
	fd, err := proc.PidfdOpen(pid)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- fd.Wait(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, fd.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Wait")
	}
}

func TestPidfdChildAndNoLeak(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "exit-after", "50ms", "0")
	p := h.Start(t)
	fd, err := proc.PidfdOpen(p.Pid)
	require.NoError(t, err)
	defer fd.Close()
	require.NoError(t, fd.Wait(context.Background()))
	assert.True(t, fd.Exited())
	assert.NoError(t, fd.Signal(0), "an exited, unreaped process still takes signals: not proof of life")

	// Many cancelled waits leave no goroutine behind.
	h2 := testproc.New(t, "sleep")
	fd2, err := proc.PidfdOpen(h2.Detach(t))
	require.NoError(t, err)
	defer fd2.Close()
	before := runtime.NumGoroutine()
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err := fd2.Wait(ctx)
		cancel()
		require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	}
	time.Sleep(10 * time.Millisecond)
	assert.LessOrEqual(t, runtime.NumGoroutine(), before+2)
}

func TestUptimeAndStartUptime(t *testing.T) {
	t.Parallel()
	self, err := proc.Default().Stat(os.Getpid())
	require.NoError(t, err)
	age := proc.Uptime() - proc.StartUptime(self.StartTicks)
	assert.Greater(t, age, time.Duration(0), "we started before now")
	assert.Less(t, age, 10*time.Minute, "and not long ago")
}
