package envfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	vars, err := Parse("x.env", "# a comment\n\nA=1\nexport B = two words \nC='single $X \\n'\nD=\"say \\\"hi\\\" \\\\ \\n\"\nE=\nA=again\nF=\"q\" # note\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"A=again", "B=two words", `C=single $X \n`, `D=say "hi" \ \n`, "E=", "F=q"}, vars)

	for src, want := range map[string]string{
		"JUST_A_WORD":      `x.env:1: "JUST_A_WORD" is not KEY=VALUE`,
		"\n1X=a":           `x.env:2: "1X" is not a variable name (letters, digits and _, not starting with a digit)`,
		"A='open":          "x.env:1: A: the value starts with a quote that never closes on its line",
		"A=\"v\" trailing": `x.env:1: A: text after the closing quote: "trailing" (quote the whole value)`,
	} {
		_, err := Parse("x.env", src)
		var le *LineError
		require.True(t, errors.As(err, &le), src)
		assert.Equal(t, want, err.Error(), src)
	}
}

func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	require.NoError(t, os.WriteFile(p, []byte("A=1\n"), 0o600))
	vars, err := Read(p)
	require.NoError(t, err)
	assert.Equal(t, []string{"A=1"}, vars)

	require.NoError(t, os.Chmod(p, 0o622))
	_, err = Read(p)
	var ue *UnsafeError
	require.True(t, errors.As(err, &ue), "%v", err)
	assert.Contains(t, err.Error(), "chmod go-w "+p)

	_, err = Read(filepath.Join(dir, "missing.env"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = Read(dir)
	assert.ErrorContains(t, err, "not a regular file")
}

func FuzzParse(f *testing.F) {
	f.Add("A=1\nexport B='x'\nC=\"a\\\"b\"\n# c\n")
	f.Fuzz(func(t *testing.T, data string) {
		vars, err := Parse("f", data)
		if err != nil {
			return
		}
		for _, kv := range vars {
			k, _, ok := bytesCut(kv)
			require.True(t, ok && validName(k), kv)
		}
	})
}

func bytesCut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
