package launch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// rssAnonKB returns the RssAnon of pid in kB (0 when unreadable).
func rssAnonKB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// Jobs with large environments (1.8 MB each) are spread over launchers by
// their size, and a launcher does not keep a job's bytes once its
// intermediate is forked: no launcher holds hundreds of MB. Not parallel:
// it counts the launchers started.
func TestLargeEnvironmentsBoundALaunchersMemory(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin"}
	for i := range 18 {
		env = append(env, fmt.Sprintf("BIG%d=%s", i, strings.Repeat("x", 100_000)))
	}
	const n = 24
	var jobs []*Job
	for range n {
		job := testJob(dir, sleepToken())
		job.Env, job.AutoPid, job.Window = env, false, 300*time.Millisecond
		job.Path, job.Argv, job.TitleRE = "/bin/true", []string{"/bin/true"}, "^never$"
		jobs = append(jobs, job)
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			batches.Lock()
			var pids []int
			for _, b := range batches.open {
				pids = append(pids, b.cmd.Process.Pid)
			}
			batches.Unlock()
			for _, pid := range pids {
				if kb := int64(rssAnonKB(pid)); kb > peak.Load() {
					peak.Store(kb)
				}
			}
		}
	}()
	before := LaunchersStarted()
	for _, r := range spawnAll(t, jobs) {
		assert.Equal(t, Exited, r.Outcome, "%+v", r)
	}
	close(stop)
	<-sampled
	launchers := LaunchersStarted() - before
	assert.GreaterOrEqual(t, launchers, int64(n*1_800_000/maxBatchBytes), "jobs spread by their size")
	t.Logf("%d launchers for %d jobs of 1.8 MB; peak RssAnon of a launcher %d kB", launchers, n, peak.Load())
	limit := int64(96 << 10) // the launcher's GOMEMLIMIT (64 MiB), and its runtime
	if raceEnabled {
		limit *= 3 // the race detector's shadow memory
	}
	assert.Less(t, peak.Load(), limit, "a launcher's anonymous memory (kB)")
}
