package usrsvc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// partialSrc is a [Program:NAME] section with the keys it needs, then extra
// lines.
func partialSrc(name string, extra ...string) string {
	return "[Program:" + name + "]\ncommand = /bin/" + name + " x\npidfile = /nonexistent/" + name + ".pid\nstdout = /nonexistent/" +
		name + ".log\n" + strings.Join(extra, "\n") + "\n"
}

func TestLoadConfigPartial(t *testing.T) {
	t.Parallel()
	type want struct {
		programs []string        // valid
		broken   map[string]bool // name → Findable
	}
	cases := []struct {
		name string
		src  string
		want want
	}{
		{"valid", testMainSection + partialSrc("a") + partialSrc("b"),
			want{programs: []string{"a", "b"}}},
		{"typo in one program's unknown key", testMainSection + partialSrc("a", "autorestrat = false") + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": true}}},
		{"bad value of a key that does not identify the process", testMainSection + partialSrc("a", "maxrestarts = many", "[[Monitor]]", "rss_limit = x", "[[Env]]", "1X = y"),
			want{nil, map[string]bool{"a": true}}},
		{"bad stdout", testMainSection + "[Program:a]\ncommand = /bin/a\npidfile = /nonexistent/a.pid\nstdout = rel.log\n" + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": true}}},
		{"missing command", testMainSection + "[Program:a]\npidfile = /nonexistent/a.pid\nstdout = /nonexistent/a.log\n" + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": false}}},
		{"bad useshell", testMainSection + partialSrc("a", "useshell = maybe"),
			want{nil, map[string]bool{"a": false}}},
		{"misspelt identifying key", testMainSection + partialSrc("a", "proctitle_ree = x"),
			want{nil, map[string]bool{"a": false}}},
		{"bad term_to_kill_seconds", testMainSection + partialSrc("a", "term_to_kill_seconds = -1"),
			want{nil, map[string]bool{"a": false}}},
		{"garbage line inside a section", testMainSection + partialSrc("a", "this is not a key") + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": false}}},
		{"a broken header ends the section above it", testMainSection + partialSrc("a") + "[Program:c\ncommand = x\n" + partialSrc("b"),
			want{programs: []string{"a", "b"}}},
		{"duplicate program", testMainSection + partialSrc("a") + partialSrc("a") + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": false}}},
		{"a broken DefaultSettings breaks its users", testMainSection + "[DefaultSettings:d]\nmaxrestarts = x\n" +
			partialSrc("a", "defaults = d") + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": true}}},
		{"defaults naming nothing", testMainSection + partialSrc("a", "defaults = nope") + partialSrc("b"),
			want{[]string{"b"}, map[string]bool{"a": false}}},
		{"a problem in [Main] breaks no program", "[Main]\npidfile = relative\nlog_format = xml\n" + partialSrc("a"),
			want{programs: []string{"a"}}},
		{"no [Main]", partialSrc("a"), want{programs: []string{"a"}}},
		{"unusable state_dir: nothing starts, stop and status still act", "[Main]\npidfile = /p\nstate_dir = relative\n" + partialSrc("a"),
			want{nil, map[string]bool{"a": true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(writeConfigTree(t, map[string]string{"usrsvc.cfg": c.src}), "usrsvc.cfg")
			cfg, err := LoadConfig(path)
			require.NotNil(t, cfg)
			if c.name == "valid" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
			assert.Equal(t, strings.Join(c.want.programs, ","), strings.Join(cfg.names(), ","))
			broken := map[string]bool{}
			for _, p := range cfg.Broken {
				broken[p.Name] = p.canFind()
				assert.NotEmpty(t, p.Problems, p.Name)
				for _, pr := range p.Problems {
					assert.Contains(t, err.Error(), pr)
				}
				assert.ErrorIs(t, p.brokenErr(ActionStart), ErrInvalidConfig)
				assert.ErrorIs(t, p.brokenErr(ActionRestart), ErrInvalidConfig)
				if p.canFind() {
					assert.NoError(t, p.brokenErr(ActionStop))
					assert.NoError(t, p.brokenErr(ActionStatus))
				} else {
					assert.ErrorIs(t, p.brokenErr(ActionStop), ErrInvalidConfig)
				}
			}
			if c.want.broken == nil {
				assert.Empty(t, broken)
			} else {
				assert.Equal(t, c.want.broken, broken)
			}
			for _, p := range cfg.Programs {
				assert.Empty(t, p.Problems)
				assert.True(t, p.canFind())
			}
			assert.NotEmpty(t, cfg.StateDir)
			assert.True(t, filepath.IsAbs(cfg.StateDir))
		})
	}
}

func TestLoadConfigPartialMissingAndUnsafe(t *testing.T) {
	t.Parallel()
	home, err := home.Dir()
	require.NoError(t, err)
	dir := t.TempDir()

	// No main file: nothing to act on, but [Main]'s defaults tell usrsvcd
	// stop and status where to look.
	cfg, err := LoadConfig(filepath.Join(dir, "missing.cfg"))
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NotNil(t, cfg)
	assert.Empty(t, cfg.Files)
	assert.Empty(t, cfg.Programs)
	assert.Equal(t, filepath.Join(home, ".local", "state", "usrsvc"), cfg.StateDir)

	// Refused for safety: refused by everything, whatever else is fine.
	tree := writeConfigTree(t, map[string]string{
		"usrsvc.cfg": testMainSection + "config_dir = d\n" + partialSrc("a"),
		"d/b.cfg":    partialSrc("b"),
		"other.cfg":  testMainSection + partialSrc("a"),
	})
	require.NoError(t, os.Chmod(filepath.Join(tree, "d", "b.cfg"), 0o666))
	cfg, err = LoadConfig(filepath.Join(tree, "usrsvc.cfg"))
	assert.Nil(t, cfg)
	assert.ErrorContains(t, err, "chmod go-w")
	require.NoError(t, os.Chmod(filepath.Join(tree, "other.cfg"), 0o620))
	cfg, err = LoadConfig(filepath.Join(tree, "other.cfg"))
	assert.Nil(t, cfg)
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
}

// A Manager over a partial configuration acts on what it can: stop and
// status of valid and findable programs, never a start of a broken one.
func TestManagerPartialConfig(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	webCmd, webToken := uniqueSleep(t)
	jobCmd, _ := uniqueSleep(t)
	e.addProgram("web", webCmd)
	e.addProgram("job", jobCmd)
	m := e.manager()
	ctx := ctxT(t)
	for _, name := range []string{"web", "job"} {
		_, err := m.Do(ctx, ActionStart, name)
		require.NoError(t, err)
	}

	// A typo in job's section and a section with no command.
	e.programs[1] += "autorestrat = false\n"
	e.programs = append(e.programs, "[Program:nocmd]\npidfile = "+e.path("nocmd.pid")+"\nstdout = "+e.path("nocmd.log")+"\n")
	cfg, err := LoadConfig(e.write())
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.Equal(t, []string{"web"}, cfg.names())
	m2, err := NewManager(cfg, Options{})
	require.NoError(t, err)

	st, err := m2.Do(ctx, ActionStatus, "job")
	require.NoError(t, err, "status of a findable broken program")
	assert.True(t, st.Running)
	res := m2.DoAll(ctx, ActionStatus, nil, false)
	require.Len(t, res, 3)
	assert.Equal(t, []exitcode.Code{exitcode.Success, exitcode.InvalidConfig, exitcode.Success}, []exitcode.Code{resultCode(res[0]), resultCode(res[1]), resultCode(res[2])}, "job, nocmd, web")

	_, err = m2.Do(ctx, ActionStart, "nocmd")
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
	_, err = m2.Do(ctx, ActionRestart, "job")
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err), "restart of a broken program")
	_, err = m2.Do(ctx, ActionStop, "nocmd")
	assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err), "nothing tells how to find nocmd")
	assert.ErrorContains(t, err, "cannot tell how to find nocmd")

	st, err = m2.Do(ctx, ActionStop, "job")
	require.NoError(t, err, "a broken but findable program is stopped")
	assert.False(t, st.Running)
	st, err = m2.Do(ctx, ActionRestart, "web")
	require.NoError(t, err, "a valid program is restarted while another is broken")
	assert.True(t, st.Running)
	res = m2.DoAll(ctx, ActionStop, nil, true)
	for _, r := range res {
		if r.Program == "nocmd" {
			assert.Equal(t, exitcode.InvalidConfig, resultCode(r))
		} else {
			assert.NoError(t, r.Err, r.Program)
		}
	}
	waitFor(t, 10*time.Second, func() bool { return len(testproc.PIDsMatching("sleep "+webToken)) == 0 }, "web stopped")
}
