package usrsvc

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// The literal match of status agrees with the regexp the launcher gets.
func FuzzMatchTitle(f *testing.F) {
	f.Add("python3 app.py", "/usr/bin/python3 app.py")
	f.Add("sleep 10", "sleep 10 ")
	f.Add("a.b", "axb")
	f.Add("x", "/x")
	f.Add("x y", "zx y")
	f.Add("tick", "tail -f tick")
	f.Fuzz(func(t *testing.T, command, title string) {
		args := strings.Fields(command)
		// The loader refuses invalid UTF-8; U+FFFD in a command would match
		// any invalid byte of a title through the regexp only.
		if len(args) == 0 || !utf8.ValidString(command) || strings.ContainsRune(command+title, utf8.RuneError) {
			return
		}
		pc := &Program{Args: args, title: &titleMatch{}}
		re := regexp.MustCompile(titleRE(pc))
		if got, want := matchTitle(pc, title), re.MatchString(title); got != want {
			t.Fatalf("match(%q) = %v, the regexp %s says %v", title, got, re, want)
		}
	})
}

// An argument that is not UTF-8 still gives a default regexp that compiles
// and matches the title.
func TestDefaultTitleNotUTF8(t *testing.T) {
	t.Parallel()
	pc := NewProgram("x", "prog", "caf\xe9", "\uFFFD")
	re := regexp.MustCompile(titleRE(pc))
	assert.True(t, re.MatchString("prog caf\xe9 \uFFFD"), re.String())
	assert.True(t, matchTitle(pc, "prog caf\xe9 \uFFFD"))
}

// The default match is the whole command line: argv[0] as written or as
// resolved in the program's PATH, then exactly its arguments. Command lines
// that merely end with the program's words are not the program.
func TestDefaultTitleAnchored(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	tick := filepath.Join(bin, "tick")
	require.NoError(t, os.WriteFile(tick, []byte("\x7fELF"), 0o700))
	pc := NewProgram("tick", "tick", "-v")
	pc.Env = []string{"PATH=" + bin}
	pc.InheritEnv = false
	require.NoError(t, NewConfig().Add(pc))
	for title, want := range map[string]bool{
		"tick -v":                             true,
		tick + " -v":                          true,
		"tick":                                false,
		"tick -v -x":                          false,
		"tail -f tick -v":                     false,
		"vim tick -v":                         false,
		"usrsvc start tick -v":                false,
		"supervisorctl -p pw tail -f tick -v": false,
		"/usr/bin/tick -v":                    true, // any absolute path to an executable named tick
		"xtick -v":                            false,
	} {
		assert.Equal(t, want, matchTitle(pc, title), title)
		assert.Equal(t, want, regexp.MustCompile(titleRE(pc)).MatchString(title), "the launcher's regexp on %q", title)
	}
}

// A #! script runs as its interpreter with the script's path: the default
// match follows the interpreter line as the kernel builds it.
func TestDefaultTitleScript(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	direct := filepath.Join(dir, "app.py")
	require.NoError(t, os.WriteFile(direct, []byte("#!/usr/bin/python3 -u\nprint(1)\n"), 0o700))
	viaEnv := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(viaEnv, []byte("#! /usr/bin/env python3\nprint(1)\n"), 0o700))

	pc := NewProgram("app", direct, "x")
	require.NoError(t, NewConfig().Add(pc))
	assert.True(t, matchTitle(pc, direct+" x"))
	assert.True(t, matchTitle(pc, "/usr/bin/python3 -u "+direct+" x"))
	assert.False(t, matchTitle(pc, "python3 "+direct+" x"), "not what this interpreter line gives")
	assert.False(t, matchTitle(pc, "vim "+direct+" x"))

	pc2 := NewProgram("tool", viaEnv, "x")
	require.NoError(t, NewConfig().Add(pc2))
	assert.True(t, matchTitle(pc2, "python3 "+viaEnv+" x"), "env runs its argument with the script")
	assert.True(t, matchTitle(pc2, "/usr/bin/env python3 "+viaEnv+" x"))
	assert.False(t, matchTitle(pc2, "less "+viaEnv+" x"))
}

// usrsvc's own processes are never a match, whatever proctitle_re says.
func TestOwnProcessesNeverMatch(t *testing.T) {
	t.Parallel()
	pc := NewProgram("tick", "tick")
	pc.ProcTitleRE = regexp.MustCompile(`tick`)
	mt := newMatcher(proc.Default(), nil)
	uid := os.Getuid()
	for args, want := range map[string]bool{
		"tick":                            true,
		"usrsvc tail -f tick":             false,
		"/usr/local/bin/usrsvc stop tick": false,
		"usrsvcd start":                   false,
		"usrsvc-launcher":                 false,
		"/home/u/tick":                    true,
	} {
		p := &proc.Process{PID: 123, UID: uid, Args: strings.Fields(args), Title: args, State: 'S'}
		assert.Equal(t, want, mt.matches(pc, p), args)
	}
}
