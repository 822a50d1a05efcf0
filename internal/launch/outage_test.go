package launch

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

func ctxMinute(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A result larger than the socket's buffer (the matched process's title
// and arguments: twice a command line of 300 kB) arrives whole, through a
// memory file, instead of being dropped while the caller waits for ever.
func TestLargeResult(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := sleepToken()
	argv := []string{"/bin/sh", "-c", "sleep " + token + "; true", "sh"}
	for i := range 3 {
		argv = append(argv, fmt.Sprintf("%d%s", i, strings.Repeat("x", 100_000)))
	}
	job := testJob(dir, token)
	job.Path, job.Argv, job.TitleRE = "/bin/sh", argv, "^/bin/sh -c sleep "+token
	res, err := Spawn(ctxMinute(t), "/proc/self/exe", job, nil)
	require.NoError(t, err)
	require.Equal(t, Started, res.Outcome, "%s %s", res.Outcome, res.Err)
	killAfter(t, res.Process.PID)
	assert.Equal(t, argv, res.Process.Args)
	assert.Greater(t, len(encodeResult(res)), 600_000)
}

// spawnAsync runs Spawn in a goroutine.
func spawnAsync(ctx context.Context, job *Job) <-chan spawned {
	ch := make(chan spawned, 1)
	go func() {
		res, err := Spawn(ctx, "/proc/self/exe", job, nil)
		ch <- spawned{res, err}
	}()
	return ch
}

type spawned struct {
	res *Result
	err error
}

// openBatchPid returns the pid of the open batch's launcher and the pid of
// the program of its job in progress, once told.
func openBatch(t *testing.T) (launcher int, programs []int) {
	var b *batch
	testWaitFor(t, func() bool {
		batches.Lock()
		defer batches.Unlock()
		b = batches.open["/proc/self/exe"]
		if b == nil {
			return false
		}
		programs = nil
		for _, w := range b.waiting {
			if w.pid == 0 {
				return false
			}
			programs = append(programs, w.pid)
		}
		return len(programs) > 0
	}, "a launcher whose jobs' programs are forked")
	return b.cmd.Process.Pid, programs
}

func testWaitFor(t *testing.T, cond func() bool, what string) {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stopped launcher blocks nobody else: after its join window, new starts
// get another launcher and succeed at once. Not parallel: it watches the
// package's open batch.
func TestStalledLauncherBlocksNobody(t *testing.T) {
	dir := t.TempDir()
	first := testJob(dir, sleepToken())
	first.AutoPid = false
	first.Window = 500 * time.Millisecond
	firstDone := spawnAsync(ctxMinute(t), first)
	launcher, programs := openBatch(t)
	killAfter(t, programs[0])
	require.NoError(t, syscall.Kill(launcher, syscall.SIGSTOP))
	t.Cleanup(func() { syscall.Kill(launcher, syscall.SIGCONT) })
	time.Sleep(2 * joinWindow)

	start := time.Now()
	var jobs []*Job
	for range 5 {
		job := testJob(dir, sleepToken())
		job.AutoPid, job.Window = false, 50*time.Millisecond
		jobs = append(jobs, job)
	}
	for _, r := range spawnAll(t, jobs) {
		require.Equal(t, Started, r.Outcome, "%+v", r)
		killAfter(t, r.Process.PID)
	}
	assert.Less(t, time.Since(start), 20*time.Second, "the others did not wait for the stopped launcher")
	select {
	case <-firstDone:
		t.Fatal("the stopped launcher answered")
	default:
	}
	require.NoError(t, syscall.Kill(launcher, syscall.SIGCONT))
	got := <-firstDone
	require.NoError(t, got.err)
	assert.Equal(t, Started, got.res.Outcome, "%+v", got.res)
}

// A launcher that cannot answer (stopped) is waited for within a bound,
// then the error says so. Not parallel: it changes answerMargin.
func TestNoAnswerIsBounded(t *testing.T) {
	answerMargin = 0
	t.Cleanup(func() { answerMargin = 30 * time.Second })
	dir := t.TempDir()
	job := testJob(dir, sleepToken())
	job.AutoPid, job.Window = false, 100*time.Millisecond
	done := spawnAsync(ctxMinute(t), job)
	launcher, programs := openBatch(t)
	killAfter(t, programs[0])
	require.NoError(t, syscall.Kill(launcher, syscall.SIGSTOP))
	t.Cleanup(func() { syscall.Kill(launcher, syscall.SIGKILL) })
	got := <-done
	require.ErrorIs(t, got.err, ErrNoAnswer)
	assert.Contains(t, got.err.Error(), fmt.Sprintf("launcher [%d] is stopped or starved", launcher))
}

// A launcher killed during the window: its jobs' programs are checked by
// the caller (one that matches is recorded and reported started; one whose
// title does not match is stopped), and a job it had not taken goes to a
// new launcher. Not parallel: it changes joinWindow.
func TestLauncherKilledMidWindow(t *testing.T) {
	joinWindow = time.Minute
	t.Cleanup(func() { joinWindow = 30 * time.Millisecond })
	dir := t.TempDir()
	ctx := ctxMinute(t)

	matching := testJob(dir, sleepToken())
	matching.Window = 2 * time.Second
	stranger := testJob(t.TempDir(), sleepToken())
	stranger.Window, stranger.TitleRE = 2*time.Second, "^nothing-like-it$"
	matchingDone := spawnAsync(ctx, matching)
	strangerDone := spawnAsync(ctx, stranger)
	var launcher int
	var programs []int
	testWaitFor(t, func() bool {
		launcher, programs = openBatch(t)
		return len(programs) == 2
	}, "two programs forked")
	for _, pid := range programs {
		killAfter(t, pid)
	}
	// A third job, sent to the launcher once stopped: never taken.
	require.NoError(t, syscall.Kill(launcher, syscall.SIGSTOP))
	untaken := testJob(t.TempDir(), sleepToken())
	untaken.Window = 100 * time.Millisecond
	untakenDone := spawnAsync(ctx, untaken)
	testWaitFor(t, func() bool {
		batches.Lock()
		defer batches.Unlock()
		b := batches.open["/proc/self/exe"]
		return b != nil && b.sent == 3
	}, "the third job sent")
	require.NoError(t, syscall.Kill(launcher, syscall.SIGKILL))

	got := <-matchingDone
	require.NoError(t, got.err)
	require.Equal(t, Started, got.res.Outcome, "%+v", got.res)
	assert.Contains(t, got.res.Note, "signal: killed")
	assert.Contains(t, programs, got.res.Process.PID)
	data, err := os.ReadFile(matching.Pidfile)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(got.res.Process.PID), strings.TrimSpace(string(data)), "recorded")

	matched := got.res.Process.PID
	got = <-strangerDone
	require.NoError(t, got.err)
	assert.Equal(t, NoMatch, got.res.Outcome, "%+v", got.res)
	for _, pid := range programs {
		if pid == matched {
			continue
		}
		testWaitFor(t, func() bool {
			p, err := proc.Default().Stat(pid)
			return err != nil || p.Zombie()
		}, "the stranger stopped")
	}

	got = <-untakenDone
	require.NoError(t, got.err)
	require.Equal(t, Started, got.res.Outcome, "%+v", got.res)
	killAfter(t, got.res.Process.PID)
	assert.Empty(t, got.res.Note, "started normally by another launcher")
}
