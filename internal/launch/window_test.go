package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// spawnAll runs jobs through Spawn, 16 at a time, and returns their results.
func spawnAll(t *testing.T, jobs []*Job) []*Result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results := make([]*Result, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = Spawn(ctx, "/proc/self/exe", job, nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "job %d", i)
	}
	return results
}

// With a window of a few milliseconds, shorter than a fork and exec on a
// busy machine, the end of the window waits for the exec record: a program
// that runs is never taken for exited or for a stranger (the launcher's
// copy before its exec), and an exec error is always told as one.
func TestTinyWindow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 128
	var jobs []*Job
	token := sleepToken()
	for i := range n {
		job := testJob(dir, fmt.Sprintf("%s%03d", token, i))
		job.AutoPid, job.Pidfile = false, ""
		job.Window = time.Duration(1+i%5) * time.Millisecond
		jobs = append(jobs, job)
	}
	results := spawnAll(t, jobs)
	t.Cleanup(func() {
		for _, r := range results {
			if r != nil && r.Process != nil {
				syscall.Kill(r.Process.PID, syscall.SIGKILL)
			}
		}
	})
	failures := 0
	for i, r := range results {
		if !assert.Equal(t, Started, r.Outcome, "job %d (window %v): %+v", i, jobs[i].Window, r) {
			failures++
			continue
		}
		assert.Equal(t, "/bin/sleep "+jobs[i].Argv[1], r.Process.Title)
	}
	assert.Zero(t, failures, "false failures of %d starts", n)

	jobs = nil
	for i := range n {
		job := testJob(dir, "1")
		job.Path = fmt.Sprintf("/nonexistent/prog%03d", i)
		job.Argv[0] = job.Path
		job.Window = time.Duration(1+i%5) * time.Millisecond
		jobs = append(jobs, job)
	}
	for i, r := range spawnAll(t, jobs) {
		assert.Equal(t, ExecFailed, r.Outcome, "exec error %d: %+v", i, r)
		assert.Equal(t, syscall.ENOENT, r.Errno, "exec error %d", i)
	}
}

// When the tree cannot be read at the end of the window, the start fails
// with the reason, and what is left is as documented: the program, which
// has exec'd (the exec record came first), left running; its intermediate
// gone; nothing still before its exec. Not parallel: it replaces readTree.
func TestTreeReadErrorLeavesNothingHalfStarted(t *testing.T) {
	launcherPid = uintptr(os.Getpid())
	stubReadTree(t, func(pid, uid int) (*proc.Snapshot, error) {
		return nil, fmt.Errorf("reading /proc: %w", syscall.EMFILE)
	})
	dir := t.TempDir()
	token := sleepToken()
	job := testJob(dir, token)
	job.Window = time.Millisecond
	forked := 0
	r := job.run(func(pid int) { forked = pid }, nil)
	require.NotZero(t, forked)
	killAfter(t, forked)
	assert.Equal(t, Failed, r.Outcome, "%+v", r)
	assert.Equal(t, syscall.EMFILE, r.Errno)
	assert.Contains(t, r.Err, "reading /proc at the end of success_seconds")
	p, err := proc.Default().Process(forked)
	require.NoError(t, err)
	assert.Equal(t, "/bin/sleep "+token, p.Title, "the program's process has exec'd")
	assert.NotEqual(t, os.Getpid(), p.PPID, "its intermediate is gone")
	parent, err := proc.Default().Process(p.PPID)
	if err == nil {
		assert.False(t, strings.Contains(parent.Title, filepath.Base(os.Args[0])), "its parent is not a copy of the launcher: %s", parent.Title)
	}
	_, err = os.Stat(filepath.Join(dir, "pid"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "no pidfile")
}
