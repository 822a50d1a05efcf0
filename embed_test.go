package usrsvc

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// examples/embed builds, supervises the helpers it defines in Go, prints
// the truth about them, leaves them running when it ends; the next run
// adopts them, and -stop stops them.
func TestEmbedExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "embed")
	out, err := exec.Command("go", "build", "-o", bin, "./examples/embed").CombinedOutput()
	require.NoError(t, err, string(out))
	t.Cleanup(func() { testproc.KillToken(bin) }) // its helpers, should the test fail

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	state := filepath.Join(dir, "state")

	out, err = exec.Command(bin, "-state", state, "-addr", addr, "-for", "3s").Output()
	require.NoError(t, err, string(out))
	text := string(out)
	assert.Contains(t, text, "event: web started")
	assert.Contains(t, text, "event: worker started")
	assert.Regexp(t, `web: running, pid \d+ \(left running\)`, text)
	assert.Regexp(t, `worker: running, pid \d+ \(left running\)`, text)
	assert.Len(t, testproc.PIDsMatching(bin+" -helper"), 2, "both helpers outlive embed")

	out, err = exec.Command(bin, "-state", state, "-addr", addr, "-for", "1s", "-stop").Output()
	require.NoError(t, err, string(out))
	text = string(out)
	assert.Contains(t, text, "event: web adopted")
	assert.Contains(t, text, "event: worker adopted")
	assert.NotContains(t, text, "started", "nothing started twice")
	assert.Contains(t, text, "web: not running")
	assert.Contains(t, text, "worker: not running")
	waitFor(t, 10*time.Second, func() bool { return len(testproc.PIDsMatching(bin+" -helper")) == 0 }, "helpers stopped")
	assert.False(t, strings.Contains(text, "left running"))
}
