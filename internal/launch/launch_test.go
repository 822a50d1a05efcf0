package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This test binary imports the package, so it serves as its own launcher.

func TestSpawnProbe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Spawn(ctx, "/proc/self/exe", &Job{Probe: true}, nil)
	require.NoError(t, err)
	assert.Equal(t, Probed, res.Outcome)
}

// A launcher started without its socket on fd 3 (a caller of another
// build) says so on its stderr and exits 2.
func TestLauncherWithoutItsSocket(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"usrsvc-launcher"}
	cmd.Env = []string{EnvMarker + "=1"}
	cmd.ExtraFiles = []*os.File{r}
	out, err := cmd.CombinedOutput()
	w.Close()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Contains(t, string(out), "not its socket")
}

// A program gets the open-files limit its caller was started with, not the
// one Go's runtime raised for the caller and the launcher (as
// syscall.ForkExec gives it back).
func TestProgramGetsTheCallersOpenFilesLimit(t *testing.T) {
	if out := os.Getenv("LAUNCH_TEST_NOFILE_OUT"); out != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := Spawn(ctx, "/proc/self/exe", &Job{
			Path: "/bin/sh", Argv: []string{"/bin/sh", "-c", "ulimit -S -n > " + out},
			Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/", Stdout: os.DevNull, Stderr: os.DevNull,
			Window: 5 * time.Second, TitleRE: "^never$",
		}, nil)
		require.NoError(t, err)
		require.Equal(t, Exited, res.Outcome, "%+v", res)
		return
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max < 200 {
		t.Skip("the hard limit is too low for this test")
	}
	t.Parallel()
	out := filepath.Join(t.TempDir(), "nofile")
	cmd := exec.Command("/bin/sh", "-c", `ulimit -S -n 100 && exec "$0" -test.run='^TestProgramGetsTheCallersOpenFilesLimit$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "LAUNCH_TEST_NOFILE_OUT="+out)
	text, err := cmd.CombinedOutput()
	require.NoError(t, err, string(text))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "100", strings.TrimSpace(string(got)))
}

// A job larger than a socket message (a 1.2 MB environment) reaches the
// launcher through a memory file, with its lock, and the program gets the
// whole environment.
func TestLargeJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"PATH=/usr/bin:/bin"}
	for i := range 12 {
		env = append(env, fmt.Sprintf("BIG%d=%s", i, strings.Repeat("x", 100_000)))
	}
	lock, err := os.Create(filepath.Join(dir, "lock"))
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(dir, "env")
	res, err := Spawn(ctx, "/proc/self/exe", &Job{
		Path: "/usr/bin/env", Argv: []string{"env"}, Env: env, Dir: "/", Stdout: out, Stderr: out,
		Window: 10 * time.Second, TitleRE: "^never$",
	}, lock)
	require.NoError(t, err)
	require.Equal(t, Exited, res.Outcome, "%+v", res)
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(1_200_000), "the program saw the whole environment")
}
