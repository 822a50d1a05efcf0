package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

func TestTail(t *testing.T) {
	t.Parallel()
	w := newWorld(t, program("p", "sleep 1000", "stderr = DIR/p.err")+program("q", "sleep 1000"))
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, "line "+strings.Repeat("x", i%3)+string(rune('a'+i%26)))
	}
	require.NoError(t, os.WriteFile(w.dir+"/p.log", []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	require.NoError(t, os.WriteFile(w.dir+"/p.err", []byte("oops\n"), 0o600))

	code, out, errs := w.run("tail", "p")
	assert.Equal(t, 0, code, errs)
	assert.Equal(t, strings.Join(lines[20:], "\n")+"\n", out, "the last 10 lines by default")
	code, out, _ = w.run("tail", "-n", "3", "p")
	assert.Equal(t, 0, code)
	assert.Equal(t, strings.Join(lines[27:], "\n")+"\n", out)
	code, out, _ = w.run("tail", "p", "--stderr")
	assert.Equal(t, 0, code)
	assert.Equal(t, "oops\n", out)

	code, _, errs = w.run("tail", "q")
	assert.Equal(t, 1, code, "no log yet: not a permission problem")
	assert.Contains(t, errs, "q has no stdout file yet")
	code, _, errs = w.run("tail", "nope")
	assert.Equal(t, 133, code)
	assert.Contains(t, errs, "no program named")
	code, _, _ = w.run("tail", "all")
	assert.Equal(t, 131, code)
	code, _, _ = w.run("tail")
	assert.Equal(t, 131, code)
	code, _, errs = w.run("status", "-f", "p")
	assert.Equal(t, 131, code)
	assert.Contains(t, errs, "--follow goes with tail, not status")
}

// TestTailFollow runs usrsvc tail -f as a real process: last lines, then
// growth, logrotate copytruncate and create, until SIGINT.
func TestTailFollow(t *testing.T) {
	t.Parallel()
	w := newWorld(t, program("p", "sleep 1000"))
	log := w.dir + "/p.log"
	require.NoError(t, os.WriteFile(log, []byte("old 1\nold 2\n"), 0o600))
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "--config", w.cfg, "tail", "-f", "-n", "1", "p")
	cmd.Env = append(os.Environ(), asMain+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testproc.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(20 * time.Second):
			t.Fatal("no line from usrsvc tail -f")
			return ""
		}
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		require.NoError(t, err)
		f.WriteString(s)
		f.Close()
	}
	assert.Equal(t, "old 2", next())
	appendTo("new 1\n")
	assert.Equal(t, "new 1", next())
	require.NoError(t, os.Truncate(log, 0)) // copytruncate
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "was truncated") }, 20*time.Second, 10*time.Millisecond,
		"the truncation seen (a look every 250 ms)")
	appendTo("after truncate\n")
	assert.Equal(t, "after truncate", next())
	require.NoError(t, os.Rename(log, log+".1")) // create
	appendTo("in the new file\n")
	assert.Equal(t, "in the new file", next())
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), stderr.String())
	assert.Contains(t, stderr.String(), "truncated")
	assert.Contains(t, stderr.String(), "replaced by a new file")
}
