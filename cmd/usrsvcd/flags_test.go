package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/version"
)

// --help prints the help on stdout with 0; a bad option or action is
// 131 with the synopsis on stderr; --version is 0.
func TestFlags(t *testing.T) {
	t.Parallel()
	call := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, h := range []string{"--help", "-h", "status --help", "help"} {
		code, stdout, stderr := call(strings.Fields(h)...)
		assert.Equal(t, int(exitcode.Success), code, h)
		assert.Contains(t, stdout, "usage: usrsvcd", h)
		assert.Contains(t, stdout, "      --foreground ", h)
		assert.Contains(t, stdout, "  -c, --config FILE ", h)
		assert.Empty(t, stderr, h)
	}
	code, stdout, stderr := call("--bogus")
	assert.Equal(t, int(exitcode.InvalidAction), code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "usrsvcd: unknown option --bogus\n")
	assert.Contains(t, stderr, "usage: usrsvcd")
	_, _, stderr = call("--forground")
	assert.Contains(t, stderr, "usrsvcd: unknown option --forground; did you mean --foreground?\n")
	code, _, stderr = call("jump")
	assert.Equal(t, int(exitcode.InvalidAction), code)
	assert.Contains(t, stderr, "usage: usrsvcd")
	code, stdout, _ = call("--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "usrsvcd "+version.Version+"\n", stdout)
}

// The help fits 80 columns and writes long options with two dashes.
func TestHelpStyle(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	require.Equal(t, 0, run([]string{"--help"}, &stdout, &stderr))
	for _, l := range strings.Split(stdout.String(), "\n") {
		assert.LessOrEqual(t, len([]rune(l)), 80, "help line longer than 80 columns: %q", l)
	}
	assert.NotRegexp(t, regexp.MustCompile(`(?m)(^|[\s,\[])-[a-z]{2,}`), stdout.String(), "a long option with one dash")
}

// usrsvcd(8) documents every option and action of the help.
func TestManPageCoversHelp(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../docs/man/usrsvcd.8.md")
	require.NoError(t, err)
	var stdout, stderr strings.Builder
	require.Equal(t, 0, run([]string{"--help"}, &stdout, &stderr))
	opts := regexp.MustCompile(`(?m)^  (?:(-\w), )?\s*(--[\w-]+)`).FindAllStringSubmatch(stdout.String(), -1)
	require.NotEmpty(t, opts)
	for _, m := range opts {
		for _, o := range m[1:] {
			if o != "" {
				assert.Contains(t, string(page), "**"+o+"**", "usrsvcd(8) does not document %s", o)
			}
		}
	}
	for _, a := range actions {
		assert.Contains(t, string(page), "**"+a+"**", "usrsvcd(8) does not document the action %s", a)
	}
}
