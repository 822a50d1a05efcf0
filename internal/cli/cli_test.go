package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
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

func TestCommand(t *testing.T) {
	t.Parallel()
	newCmd := func() (*Command, *strings.Builder, *strings.Builder, *bool) {
		var stdout, stderr strings.Builder
		c := NewCommand("d", "usage: d [start]\n", &stderr)
		fg := c.Bool("foreground", false, "stay attached")
		return c, &stdout, &stderr, fg
	}
	for _, h := range []string{"--help", "-h", "-help"} {
		c, stdout, stderr, _ := newCmd()
		pos, help, err := c.ParseArgs([]string{"start", h}, stdout)
		require.NoError(t, err, h)
		assert.True(t, help, h)
		assert.Nil(t, pos)
		assert.Contains(t, stdout.String(), "usage: d [start]\n", h)
		assert.Contains(t, stdout.String(), "-foreground", h)
		assert.Empty(t, stderr.String(), h)
	}
	c, stdout, stderr, fg := newCmd()
	pos, help, err := c.ParseArgs([]string{"start", "--foreground"}, stdout)
	require.NoError(t, err)
	assert.False(t, help)
	assert.Equal(t, []string{"start"}, pos)
	assert.True(t, *fg)
	assert.Empty(t, stdout.String())
	assert.Empty(t, stderr.String())

	c, stdout, stderr, _ = newCmd()
	_, help, err = c.ParseArgs([]string{"--bogus"}, stdout)
	assert.Error(t, err)
	assert.False(t, help)
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), "flag provided but not defined: -bogus")
	assert.Contains(t, stderr.String(), "usage: d [start]")
}
