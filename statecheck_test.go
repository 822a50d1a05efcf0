package usrsvc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A state directory others could change is refused by every operation,
// with the fix; usrsvcd does not start on it.
func TestStateDirRefusedWhenUnsafe(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("web", cmd)
	m := e.manager()
	ctx := ctxT(t)
	_, err := m.Do(ctx, ActionStart, "web")
	require.NoError(t, err)
	sd := e.path("state")

	require.NoError(t, os.Chmod(sd, 0o777))
	_, err = m.Do(ctx, ActionStatus, "web")
	assert.Equal(t, exitcode.InsufficientPermissions, exitcode.Of(err))
	assert.ErrorContains(t, err, "chmod go-w "+sd)
	res := m.DoAll(ctx, ActionStop, nil, true)
	require.Len(t, res, 1)
	assert.Equal(t, exitcode.InsufficientPermissions, resultCode(res[0]))
	_, err = m.takeDaemonLock()
	assert.ErrorContains(t, err, "writable by group or others")
	require.NoError(t, os.Chmod(sd, 0o700))

	require.NoError(t, os.Chmod(filepath.Join(sd, "programs"), 0o720))
	_, err = m.Do(ctx, ActionStop, "web")
	assert.ErrorContains(t, err, "chmod go-w "+filepath.Join(sd, "programs"))
	require.NoError(t, os.Chmod(filepath.Join(sd, "programs"), 0o700))

	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(filepath.Join(sd, "locks"), 65534, 65534))
		_, err = m.Do(ctx, ActionStop, "web")
		assert.ErrorContains(t, err, "owned by uid 65534")
		assert.ErrorContains(t, err, "chown -R 0 "+filepath.Join(sd, "locks"))
		require.NoError(t, os.Chown(filepath.Join(sd, "locks"), 0, 0))
	}
	st, err := m.Do(ctx, ActionStop, "web")
	require.NoError(t, err, "fixed: works again")
	assert.False(t, st.Running)
}

// A record or lock replaced by a directory, or unreadable: a message naming
// the file and the fix; the other programs are not disturbed.
func TestStateFilesReplacedByDirectories(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	webCmd, _ := uniqueSleep(t)
	jobCmd, _ := uniqueSleep(t)
	e.addProgram("web", webCmd)
	e.addProgram("job", jobCmd)
	m := e.manager()
	ctx := ctxT(t)
	for _, name := range []string{"web", "job"} {
		_, err := m.Do(ctx, ActionStart, name)
		require.NoError(t, err)
	}
	sd := statedir.Dir(e.path("state"))

	lock := filepath.Join(string(sd), "locks", "web.lock")
	require.NoError(t, os.Remove(lock))
	require.NoError(t, os.Mkdir(lock, 0o700))
	_, err := m.Do(ctx, ActionStop, "web")
	assert.Equal(t, exitcode.InsufficientPermissions, exitcode.Of(err))
	assert.ErrorContains(t, err, "rm -r "+lock)
	_, err = m.Do(ctx, ActionRestart, "job")
	assert.NoError(t, err, "the other program is not disturbed")
	require.NoError(t, os.Remove(lock))

	manual := sd.ManualPath("web")
	require.NoError(t, os.Remove(manual))
	require.NoError(t, os.Mkdir(manual, 0o700))
	st, err := m.Do(ctx, ActionStatus, "web")
	require.NoError(t, err, "status answers")
	assert.True(t, st.Running)
	assert.Contains(t, strings.Join(st.Warnings, "\n"), "rm -r "+manual)
	_, err = m.Do(ctx, ActionStart, "web")
	assert.Equal(t, exitcode.InsufficientPermissions, exitcode.Of(err))
	assert.ErrorContains(t, err, "rm -r "+manual)
	require.NoError(t, os.Remove(manual))
	_, err = m.Do(ctx, ActionStop, "web")
	assert.NoError(t, err)
}

// Pidfiles a mistake or another tool could break: each is stale, explained
// with its file, removed (autopid) and replaced by an adopting scan; a
// symlink is replaced, never written through; nothing is signalled.
func TestHostilePidfiles(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("web", cmd)
	m := e.manager()
	ctx := ctxT(t)
	st, err := m.Do(ctx, ActionStart, "web")
	require.NoError(t, err)
	pid := st.Process.PID
	pidfile := e.path("web.pid")
	target := e.path("precious")
	require.NoError(t, os.WriteFile(target, []byte("not a pid\n"), 0o600))

	cases := []struct {
		name, why string
		make      func() error
	}{
		{"empty", "does not hold a pid", func() error { return os.WriteFile(pidfile, nil, 0o600) }},
		{"garbage", "does not hold a pid", func() error { return os.WriteFile(pidfile, []byte("hello\x00\n"), 0o600) }},
		{"negative", "does not hold a pid", func() error { return os.WriteFile(pidfile, []byte("-5\n"), 0o600) }},
		{"huge sparse", "larger than 4096 bytes", func() error {
			if err := os.WriteFile(pidfile, nil, 0o600); err != nil {
				return err
			}
			return os.Truncate(pidfile, 1<<30)
		}},
		{"another process of ours", "process " + strconv.Itoa(os.Getpid()) + " is not web (its command line does not match proctitle_re", func() error {
			return os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
		}},
		{"symlink to /dev/zero", "larger than 4096 bytes", func() error { return os.Symlink("/dev/zero", pidfile) }},
		{"symlink to a file", "does not hold a pid", func() error { return os.Symlink(target, pidfile) }},
	}
	for _, c := range cases {
		require.NoError(t, os.Remove(pidfile), c.name)
		require.NoError(t, c.make(), c.name)
		t0 := time.Now()
		st, err := m.Do(ctx, ActionStatus, "web")
		require.NoError(t, err, c.name)
		assert.Less(t, time.Since(t0), 5*time.Second, c.name)
		assert.True(t, st.Running, c.name)
		assert.Equal(t, pid, st.Process.PID, c.name)
		assert.Contains(t, strings.Join(st.Warnings, "\n"), "stale pidfile "+pidfile+": "+c.why, c.name)
		fi, err := os.Lstat(pidfile)
		require.NoError(t, err, c.name)
		assert.True(t, fi.Mode().IsRegular(), "%s: the pidfile is a plain file again", c.name)
		data, _ := os.ReadFile(pidfile)
		assert.Equal(t, strconv.Itoa(pid)+"\n", string(data), c.name)
	}
	data, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "not a pid\n", string(data), "never written through a symlink")
	assert.True(t, testproc.Alive(os.Getpid()))
}

// FuzzPidfile: whatever a pidfile holds, resolution never panics, never
// hangs, and never takes a process that does not match the program.
func FuzzPidfile(f *testing.F) {
	for _, s := range []string{"", "\n", "garbage", "-5", "0", "1", "99999999999999999999999", "\x00\x00\x00",
		"123\n456\n", "  42  ", strings.Repeat("1", 5000), strconv.Itoa(os.Getpid()), "4194304", "0x10"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	pc := &Program{Name: "p", Pidfile: filepath.Join(dir, "p.pid"), AutoPid: false}
	pc.Args, pc.title = []string{"/nonexistent/usrsvc-fuzz-program", "x"}, &titleMatch{}
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(pc.Pidfile, data, 0o600))
		found, err := newMatcher(proc.Default(), nil).find(pc)
		if err != nil {
			require.False(t, errors.Is(err, ErrInvalidConfig), err)
			return
		}
		require.Nil(t, found.Process, "nothing runs under that title")
	})
}

// FuzzStateRecord: a state file holding anything reads as a record or as a
// clear error naming the file, never a panic.
func FuzzStateRecord(f *testing.F) {
	for _, s := range []string{"", "{", `{"version":1,"program":"web","act`, `{"version":7,"program":"web","action":"stop"}`,
		`{"version":1,"program":"web","state":"running","restarts":-3,"last_exit":{"time":"x"}}`, "null", "[]",
		`{"version":"1"}`, `{"version":1e400}`, "\xff\xfe", `{"version":1,"pid":99999999999999999999}`} {
		f.Add([]byte(s))
	}
	sd := statedir.Dir(f.TempDir())
	_, err := sd.Ensure("programs")
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(sd.RecordPath("web"), data, 0o600))
		require.NoError(t, os.WriteFile(sd.ManualPath("web"), data, 0o600))
		if _, err := sd.Record("web"); err != nil {
			require.Contains(t, err.Error(), sd.RecordPath("web"))
		}
		if _, _, err := sd.StoppedByHand("web"); err != nil {
			require.Contains(t, err.Error(), sd.ManualPath("web"))
		}
	})
}
