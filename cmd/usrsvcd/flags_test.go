package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/version"
)

// --help prints the usage on stdout with 138; a bad flag or action is
// 131 with the usage on stderr; --version is 0.
func TestFlags(t *testing.T) {
	t.Parallel()
	call := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, h := range []string{"--help", "-h", "status --help"} {
		code, stdout, stderr := call(strings.Fields(h)...)
		assert.Equal(t, int(exitcode.HelpMessage), code, h)
		assert.Contains(t, stdout, "usage: usrsvcd", h)
		assert.Contains(t, stdout, "-foreground", h)
		assert.Empty(t, stderr, h)
	}
	code, stdout, stderr := call("--bogus")
	assert.Equal(t, int(exitcode.InvalidAction), code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "flag provided but not defined: -bogus")
	assert.Contains(t, stderr, "usage: usrsvcd")
	code, _, stderr = call("jump")
	assert.Equal(t, int(exitcode.InvalidAction), code)
	assert.Contains(t, stderr, "usage: usrsvcd")
	code, stdout, _ = call("--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "usrsvcd "+version.Version+"\n", stdout)
}
