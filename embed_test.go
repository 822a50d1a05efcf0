package usrsvc

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// examples/embed builds, supervises a program, reports its events, and
// leaves the program running when it stops.
func TestEmbedExample(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "embed")
	build := exec.Command("go", "build", "-o", bin, "./examples/embed")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	e := newTestEnv(t)
	cmdline, token := uniqueSleep(t)
	e.addProgram("sleeper", cmdline)
	cfg := e.write()
	out, err = exec.Command(bin, "-config", cfg, "-for", "1500ms").Output()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "event started sleeper")
	assert.Contains(t, string(out), "left running: sleeper")

	m := e.manager()
	st, err := m.Status(context.Background(), "sleeper")
	require.NoError(t, err)
	require.True(t, st.Running, "the program outlives the embedding program")
	assert.Contains(t, st.Process.Title, token)
	_, err = m.Stop(context.Background(), "sleeper")
	require.NoError(t, err)
}
