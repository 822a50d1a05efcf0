package memtrim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rssFile is this process's RssFile (kB): the pages of files it maps.
func rssFile(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestTrim(t *testing.T) {
	before := rssFile(t)
	dropped, err := Trim()
	require.NoError(t, err)
	assert.Positive(t, dropped, "the test binary's code and constants are unmapped")
	after := rssFile(t)
	assert.Less(t, after, before, "RssFile %d kB → %d kB", before, after)
	// The code still runs: it is mapped again on demand.
	assert.Equal(t, "12", strconv.Itoa(12))
}

func TestIdleTrimsOnceAfterQuiet(t *testing.T) {
	var trims atomic.Int32
	i := NewIdle(100*time.Millisecond, func(dropped int, err error) {
		assert.NoError(t, err)
		trims.Add(1)
	})
	defer i.Stop()
	for range 5 {
		i.Poke()
	}
	assert.Eventually(t, func() bool { return trims.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int32(1), trims.Load(), "one trim for one burst")
	i.Poke()
	assert.Eventually(t, func() bool { return trims.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
}

// TestTrimKeepsRelocatedData builds a program that trims itself and then
// reads its relocated read-only data, as a position-independent executable
// (how distributions build Go programs) and as a plain one: both must run.
// Dropping the relocated pages of a PIE brought back the file's bytes and
// crashed it with SIGSEGV.
func TestTrimKeepsRelocatedData(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the test programs")
	for _, mode := range []string{"pie", "exe"} {
		t.Run(mode, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "trim-"+mode)
			build := exec.Command(gobin, "build", "-buildmode="+mode, "-o", bin, "./testdata/pie")
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := build.CombinedOutput()
			require.NoError(t, err, "%s", out)
			out, err = exec.Command(bin).CombinedOutput()
			require.NoError(t, err, "a trimmed %s must keep running:\n%s", mode, out)
			assert.Equal(t, "circle=3,square=4 true\n", string(out))
		})
	}
}
