package shellcmd

import (
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
