package cli

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	newFS := func() (*flag.FlagSet, *bool, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.Bool("json", false, ""), fs.String("config", "", "")
	}
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
		cfg  string
	}{
		{[]string{"status", "web"}, []string{"status", "web"}, false, ""},
		{[]string{"--json", "status", "web"}, []string{"status", "web"}, true, ""},
		{[]string{"status", "web", "--json", "-config=c"}, []string{"status", "web"}, true, "c"},
		{[]string{"status", "--config", "c", "web"}, []string{"status", "web"}, false, "c"},
		{[]string{"status", "--", "--json", "-x"}, []string{"status", "--json", "-x"}, false, ""},
		{[]string{"-", "web"}, []string{"-", "web"}, false, ""},
		{nil, nil, false, ""},
	} {
		fs, js, cfg := newFS()
		pos, err := Parse(fs, tc.args)
		require.NoError(t, err, tc.args)
		assert.Equal(t, tc.pos, pos, tc.args)
		assert.Equal(t, tc.json, *js, tc.args)
		assert.Equal(t, tc.cfg, *cfg, tc.args)
	}
	fs, _, _ := newFS()
	_, err := Parse(fs, []string{"status", "--help"})
	assert.True(t, errors.Is(err, flag.ErrHelp))
	fs, _, _ = newFS()
	_, err = Parse(fs, []string{"status", "--bogus"})
	assert.ErrorContains(t, err, "flag provided but not defined: -bogus")
}
