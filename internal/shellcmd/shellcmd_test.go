package shellcmd

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArgs(t *testing.T) {
	t.Parallel()
	var p Parser
	for cmd, want := range map[string][]string{
		`/bin/sleep 10`:             {"/bin/sleep", "10"},
		`python3 'my app.py' "x y"`: {"python3", "my app.py", "x y"},
		`~/bin/app --dir ~/data`:    {"/home/u/bin/app", "--dir", "/home/u/data"},
		`echo a\ b *.txt`:           {"echo", "a b", "*.txt"},
	} {
		args, err := p.Args(cmd, "/home/u")
		require.NoError(t, err, cmd)
		assert.Equal(t, want, args, cmd)
	}
	for cmd, want := range map[string]string{
		`app $HOME`:       "parameter expansion $HOME",
		`app > log`:       "redirection",
		`a && b`:          "operator &&",
		`FOO=1 app`:       "[[Env]]",
		`cd /tmp`:         "shell builtin",
		`app # comment`:   "comment",
		``:                "empty",
		`app 'unfinished`: "not valid shell syntax",
	} {
		_, err := p.Args(cmd, "/home/u")
		assert.ErrorContains(t, err, want, cmd)
	}
}

func TestShellArgs(t *testing.T) {
	t.Parallel()
	var p Parser
	args, why, pipeline, err := p.ShellArgs(`cd /srv && exec python3 app.py --port 80`, "/home/u")
	require.NoError(t, err)
	assert.Equal(t, []string{"python3", "app.py", "--port", "80"}, args)
	assert.Empty(t, why)
	assert.False(t, pipeline)

	_, _, pipeline, err = p.ShellArgs(`producer | consumer`, "/home/u")
	require.NoError(t, err)
	assert.True(t, pipeline)

	args, why, _, err = p.ShellArgs(`app $PORT`, "/home/u")
	require.NoError(t, err)
	assert.Nil(t, args)
	assert.Contains(t, why, "only known when the shell runs")

	_, _, _, err = p.ShellArgs(`if then`, "/home/u")
	assert.ErrorContains(t, err, "not valid shell syntax")
}

// plainArgs gives exactly what the parser gives, for every command it
// accepts.
func TestPlainArgsAgreesWithTheParser(t *testing.T) {
	for _, cmd := range []string{
		"/bin/sleep 86400", "python3 app.py --port=8080", "a  b\tc", "prog -x +y a,b key=v user@host 50% x:y",
		"/usr/bin/env", "sleep 1.5", "prog ./rel/path ../up",
	} {
		want, err := new(Parser).parseArgs(cmd)
		require.NoError(t, err, cmd)
		got := plainArgs(cmd)
		require.NotNil(t, got, "%q is plain", cmd)
		assert.Equal(t, want, got, cmd)
	}
	for _, cmd := range []string{
		"", "  ", "FOO=1 prog", "cd /tmp", "if true", "prog 'a b'", `prog a\ b`, "prog $HOME", "prog ~/x",
		"prog # c", "a; b", "a | b", "prog *.go", "prog é", "done", "time prog", "prog\nx",
	} {
		assert.Nil(t, plainArgs(cmd), "%q is left to the parser", cmd)
	}
}

func FuzzPlainArgs(f *testing.F) {
	for _, s := range []string{"/bin/sleep 1", "a b=c", "x  y\tz", "if x", "FOO=1 x", "exec x", "in x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		got := plainArgs(cmd)
		if got == nil {
			return
		}
		want, err := new(Parser).parseArgs(cmd)
		if err != nil {
			t.Fatalf("%q: plainArgs = %q, the parser refuses it: %v", cmd, got, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: plainArgs = %q, the parser = %q", cmd, got, want)
		}
	})
}

// parseArgs is Args through the parser only.
func (sp *Parser) parseArgs(command string) ([]string, error) {
	args, msg := sp.parsedArgs(command, "/home/u")
	if msg != "" {
		return nil, errors.New(msg)
	}
	return args, nil
}
