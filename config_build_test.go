package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// goConfig is a configuration built in Go with its own state directory.
func goConfig(t testing.TB) *Config {
	cfg := NewConfig()
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	return cfg
}

// Every way a caller can build a Config ends in a working Manager (what
// can be defaulted is) or in a clear *ConfigError from NewManager — never
// a panic.
func TestBuildConfigTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func(cfg *Config)
		want  string // "" → NewManager succeeds
		check func(t *testing.T, cfg *Config)
	}{
		{name: "zero Program", build: func(c *Config) { c.Programs = append(c.Programs, &Program{}) },
			want: "no name"},
		{name: "name only", build: func(c *Config) { c.Programs = append(c.Programs, &Program{Name: "x"}) },
			want: "nothing to run"},
		{name: "NewProgram without argv", build: func(c *Config) { c.Programs = append(c.Programs, NewProgram("x")) },
			want: "nothing to run"},
		{name: "empty argv[0]", build: func(c *Config) { c.Programs = append(c.Programs, NewProgram("x", "")) },
			want: "Args[0], the program to run, is empty"},
		{name: "minimal hand-made program is defaulted", build: func(c *Config) {
			c.Programs = append(c.Programs, &Program{Name: "x", Args: []string{"/bin/sleep", "1"}})
		}, check: func(t *testing.T, c *Config) {
			pc := c.Program("x")
			assert.Equal(t, filepath.Join(c.StateDir, "pids", "x.pid"), pc.Pidfile)
			assert.Equal(t, filepath.Join(c.StateDir, "logs", "x.log"), pc.Stdout)
			assert.Equal(t, pc.Stdout, pc.Stderr)
			assert.Equal(t, 2*time.Second, pc.SuccessSeconds)
			assert.True(t, matchTitle(pc, "/bin/sleep 1"))
			assert.False(t, matchTitle(pc, "less /bin/sleep 1"))
			assert.Equal(t, `^(?:/bin/sleep|/(?:[^ ]*/)?sleep) 1$`, titleRE(pc))
			assert.Equal(t, "/bin/sleep 1", pc.Command)
		}},
		{name: "missing pidfile", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.Stdout = "/tmp/x.log"
			c.Programs = append(c.Programs, pc)
		}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, filepath.Join(c.StateDir, "pids", "x.pid"), c.Program("x").Pidfile)
			assert.Equal(t, "/tmp/x.log", c.Program("x").Stderr)
		}},
		{name: "relative pidfile", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.Pidfile = "x.pid"
			c.Programs = append(c.Programs, pc)
		}, want: `Pidfile (pidfile) "x.pid" must be an absolute path`},
		{name: "relative stdout and dir", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.Stdout, pc.Dir = "logs/x.log", "work"
			c.Programs = append(c.Programs, pc)
		}, want: `Stdout (stdout) "logs/x.log" must be an absolute path`},
		{name: "duplicate names", build: func(c *Config) {
			c.Programs = append(c.Programs, NewProgram("x", "sleep", "1"), NewProgram("x", "sleep", "2"))
		}, want: `duplicate program "x"`},
		{name: "unsorted programs are sorted", build: func(c *Config) {
			c.Programs = append(c.Programs, NewProgram("zeta", "sleep", "1"), NewProgram("alpha", "sleep", "2"))
		}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, []string{"alpha", "zeta"}, c.names())
			assert.NotNil(t, c.Program("zeta"))
		}},
		{name: "nil program", build: func(c *Config) { c.Programs = append(c.Programs, nil) }, want: "Programs[0] is nil"},
		{name: "bad and reserved names", build: func(c *Config) {
			c.Programs = append(c.Programs, NewProgram("a b", "sleep", "1"), NewProgram("all", "sleep", "1"),
				NewProgram(strings.Repeat("n", 101), "sleep", "1"))
		}, want: "may only hold letters"},
		{name: "no state directory", build: func(c *Config) { c.StateDir = "" }, want: "no state directory"},
		{name: "relative state directory", build: func(c *Config) { c.StateDir = "state" }, want: "must be an absolute path"},
		{name: "negative durations and counts", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.TermToKill, pc.RestartDelay, pc.MaxRestarts, pc.RSSLimitKB = -1, -time.Second, -1, -5
			c.Programs = append(c.Programs, pc)
		}, want: "TermToKill (term_to_kill_seconds) is negative"},
		{name: "useshell without command", build: func(c *Config) {
			pc := NewProgram("x")
			pc.UseShell = true
			c.Programs = append(c.Programs, pc)
		}, want: "UseShell is set but Command is empty"},
		{name: "useshell without a title", build: func(c *Config) {
			pc := &Program{Name: "x", UseShell: true, Command: "exec sleep $N"}
			c.Programs = append(c.Programs, pc)
		}, want: "cannot tell which process is the program"},
		{name: "useshell with a title", build: func(c *Config) {
			pc := NewProgram("x")
			pc.UseShell, pc.Command = true, "exec sleep $N"
			pc.ProcTitleRE = regexp.MustCompile("^sleep [0-9]+$")
			c.Programs = append(c.Programs, pc)
		}},
		{name: "bad environment", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.Env = []string{"1BAD=v", "OK=a\x00b"}
			c.Programs = append(c.Programs, pc)
		}, want: `environment entry "1BAD=v" is not KEY=VALUE with a valid name`},
		{name: "NUL in an argument", build: func(c *Config) {
			c.Programs = append(c.Programs, NewProgram("x", "sleep", "1\x002"))
		}, want: "NUL byte"},
		{name: "activity file without limit", build: func(c *Config) {
			pc := NewProgram("x", "sleep", "1")
			pc.ActivityFile = "/tmp/alive"
			c.Programs = append(c.Programs, pc)
		}, want: "ActivityFileLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := goConfig(t)
			tc.build(cfg)
			m, err := NewManager(cfg, Options{})
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, m)
				require.NoError(t, m.Config().validate())
				if tc.check != nil {
					tc.check(t, m.Config())
				}
				return
			}
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
			_, verr := cfg.complete()
			assert.Equal(t, err, verr, "what NewManager refuses")
		})
	}
}

func TestConfigAdd(t *testing.T) {
	t.Parallel()
	cfg := goConfig(t)
	for _, name := range []string{"b", "c", "a"} {
		require.NoError(t, cfg.Add(NewProgram(name, "sleep", "1")))
	}
	assert.Equal(t, []string{"a", "b", "c"}, cfg.names(), "Add keeps the name order")
	err := cfg.Add(NewProgram("b", "sleep", "2"))
	assert.ErrorContains(t, err, `program "b" is already in the configuration`)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	err = cfg.Add(NewProgram("d"))
	assert.ErrorContains(t, err, "nothing to run")
	assert.ErrorContains(t, cfg.Add(nil), "Add(nil)")
	assert.Len(t, cfg.Programs, 3, "a refused program is not added")
	require.NoError(t, cfg.validate())
	assert.Equal(t, "a", cfg.Program("a").Name)
}

// A Go-built configuration has no file: Reread says to use Reload; Reload
// validates.
func TestBuildConfigReload(t *testing.T) {
	t.Parallel()
	cfg := goConfig(t)
	require.NoError(t, cfg.Add(NewProgram("a", "sleep", "1")))
	m, err := NewManager(cfg, Options{})
	require.NoError(t, err)
	assert.ErrorIs(t, m.Reread(context.Background()), ErrInvalidAction)
	bad := goConfig(t)
	bad.Programs = append(bad.Programs, &Program{Name: "x"})
	assert.ErrorIs(t, m.Reload(context.Background(), bad), ErrInvalidConfig)
	assert.Equal(t, []string{"a"}, m.Config().names(), "the old configuration stays")
	good := goConfig(t)
	require.NoError(t, good.Add(NewProgram("b", "sleep", "1")))
	require.NoError(t, m.Reload(context.Background(), good))
	assert.Equal(t, []string{"b"}, m.Config().names())
}

// A program defined in Go starts, with its pidfile and log in the state
// directory (created on the first start), in its directory; a config file's
// directory key does the same.
func TestGoProgramStartsInItsDirectory(t *testing.T) {
	t.Parallel()
	cfg := goConfig(t)
	cmdline, token := uniqueSleep(t)
	pc := NewProgram("sleeper", strings.Fields(cmdline)...)
	pc.SuccessSeconds = 300 * time.Millisecond
	pc.Dir = t.TempDir()
	require.NoError(t, cfg.Add(pc))
	m, err := NewManager(cfg, Options{})
	require.NoError(t, err)
	st, err := m.Do(ctxT(t), ActionStart, "sleeper")
	require.NoError(t, err)
	require.True(t, st.Running)
	assert.Contains(t, st.Process.Title, token)
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", st.Process.PID))
	require.NoError(t, err)
	assert.Equal(t, pc.Dir, cwd)
	_, err = os.Stat(filepath.Join(cfg.StateDir, "pids", "sleeper.pid"))
	assert.NoError(t, err)
	_, err = m.Do(ctxT(t), ActionStop, "sleeper")
	require.NoError(t, err)

	e := newTestEnv(t)
	dir := t.TempDir()
	cmdline2, _ := uniqueSleep(t)
	e.addProgram("inDir", cmdline2, "directory = "+dir)
	m2 := e.manager()
	assert.Equal(t, dir, m2.Config().Program("inDir").Dir)
	st, err = m2.Do(ctxT(t), ActionStart, "inDir")
	require.NoError(t, err)
	cwd, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", st.Process.PID))
	require.NoError(t, err)
	assert.Equal(t, dir, cwd)
	_, err = m2.Do(ctxT(t), ActionStop, "inDir")
	require.NoError(t, err)
}

// FuzzNewManager: whatever fields a caller sets, Validate and NewManager
// answer (nil or a *ConfigError) and never panic, and an accepted program
// can be matched and prepared for a launch.
func FuzzNewManager(f *testing.F) {
	f.Add("web", "/bin/sleep", "10", "", "", "", false, "", int64(0), int64(0), 0, "K", "v", "")
	f.Add("", "", "", "rel.pid", "/x/out", "/x/err", true, "exec a $B", int64(-1), int64(5), -3, "1", "\x00", "d")
	f.Add("a.b-c", "sh", "-c", "/p", "/o", "", true, "x | y", int64(2e9), int64(-7), 2, "", "", "/")
	state := filepath.Join(f.TempDir(), "state")
	f.Fuzz(func(t *testing.T, name, arg0, arg1, pidfile, stdout, stderr string, useShell bool, command string,
		success, term int64, maxRestarts int, envKey, envVal, dir string) {
		cfg := NewConfig()
		cfg.StateDir = state
		pc := &Program{Name: name, Pidfile: pidfile, Stdout: stdout, Stderr: stderr, UseShell: useShell,
			Command: command, SuccessSeconds: time.Duration(success), TermToKill: time.Duration(term),
			MaxRestarts: maxRestarts, Dir: dir, Enabled: true}
		if arg0 != "" || arg1 != "" {
			pc.Args = []string{arg0, arg1}
		}
		if envKey != "" {
			pc.Env = []string{envKey + "=" + envVal}
		}
		if addErr := NewConfig().Add(pc); addErr != nil {
			var ce *ConfigError
			require.True(t, errors.As(addErr, &ce), "%v", addErr)
		}
		cfg.Programs = append(cfg.Programs, pc)
		verr := cfg.validate()
		m, err := NewManager(cfg, Options{})
		if err != nil {
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			require.Nil(t, m)
			return
		}
		require.NotNil(t, m)
		_ = verr // NewManager may have filled in what Validate refused before
		pc = m.config().Program(pc.Name)
		matchTitle(pc, "sleep 10")
		require.NotEmpty(t, titleRE(pc), "an accepted program has a title regexp")
		if _, err := m.buildJob(pc); err != nil {
			require.NotEqual(t, exitcode.UnknownFailure, exitcode.Of(err), "%v", err)
		}
	})
}
