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
	newCmd := func() (*Command, *strings.Builder, *strings.Builder, *bool, *string) {
		var stdout, stderr strings.Builder
		c := New("d", "usage: d [options] [start]\n\nDoes things.\n", "Return codes: 0.\n", &stderr)
		fg, file := new(bool), new(string)
		c.Bool(fg, "foreground", "stay attached")
		c.String(file, "c config", "FILE", "the config file")
		c.Bool(new(bool), "x", "only for start").For = []string{"start"}
		return c, &stdout, &stderr, fg, file
	}
	for _, h := range []string{"--help", "-h", "-help"} {
		c, stdout, stderr, _, _ := newCmd()
		pos, help, err := c.Parse([]string{"start", h}, stdout)
		require.NoError(t, err, h)
		assert.True(t, help, h)
		assert.Nil(t, pos)
		assert.Equal(t, "usage: d [options] [start]\n\nDoes things.\n\nOptions:\n"+
			"      --foreground   stay attached\n"+
			"  -c, --config FILE  the config file\n"+
			"  -x                 start: only for start\n"+
			"  -h, --help         print this help and exit\n"+
			"\nReturn codes: 0.\n", stdout.String(), h)
		assert.Empty(t, stderr.String(), h)
	}
	c, stdout, stderr, fg, file := newCmd()
	pos, help, err := c.Parse([]string{"start", "--foreground", "-c", "f"}, stdout)
	require.NoError(t, err)
	assert.False(t, help)
	assert.Equal(t, []string{"start"}, pos)
	assert.True(t, *fg)
	assert.Equal(t, "f", *file)
	assert.Empty(t, stdout.String())
	assert.Empty(t, stderr.String())
	assert.Nil(t, c.Misplaced("start"))

	c, stdout, _, _, _ = newCmd()
	_, _, err = c.Parse([]string{"stop", "-x"}, stdout)
	require.NoError(t, err)
	assert.Equal(t, "-x", c.Misplaced("stop").Long())

	for _, tc := range []struct{ args, msg string }{
		{"--forground", "d: unknown option --forground; did you mean --foreground?\n"},
		{"--bogus", "d: unknown option --bogus\n"},
		{"--config", "d: option --config needs a value (--config FILE)\n"},
		{"--foreground=maybe", `d: invalid boolean value "maybe" for --foreground: parse error` + "\n"},
	} {
		c, stdout, stderr, _, _ := newCmd()
		_, help, err = c.Parse(strings.Fields(tc.args), stdout)
		assert.Error(t, err, tc.args)
		assert.False(t, help)
		assert.Empty(t, stdout.String())
		assert.Equal(t, tc.msg+"usage: d [options] [start]\n(d --help shows every option)\n", stderr.String(), tc.args)
	}

	c, _, stderr, _, _ = newCmd()
	c.UnknownAction("strat", []string{"start", "stop"})
	assert.Equal(t, "d: unknown action \"strat\"; did you mean start?\n", strings.SplitAfter(stderr.String(), "\n")[0])
	c, _, stderr, _, _ = newCmd()
	c.UnknownAction("zzz", []string{"start", "stop"})
	assert.Contains(t, stderr.String(), `unknown action "zzz" (actions: start, stop)`)
	assert.Equal(t, "--config", c.SuggestOption("confg").Long())
}

func TestWrap(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "aaa bbb\n    ccc", wrap("aaa bbb ccc", 4, 11))
	assert.Equal(t, "", wrap("", 4, 11))
}
