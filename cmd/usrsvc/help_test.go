package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// rootWarning is what usrsvc says when run as root (as CI does).
const rootWarning = "usrsvc: warning: running as root; usrsvc is meant for a service account\n"

// helpText is usrsvc --help.
func helpText(t *testing.T) string {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &out, &errb))
	return out.String()
}

// The help fits 80 columns and shows options with two dashes, as the three
// tools do, never package flag's "-config".
func TestHelpStyle(t *testing.T) {
	t.Parallel()
	help := helpText(t)
	for _, l := range strings.Split(help, "\n") {
		assert.LessOrEqual(t, len([]rune(l)), 80, "help line longer than 80 columns: %q", l)
	}
	assert.NotRegexp(t, regexp.MustCompile(`(?m)(^|[\s,\[])-[a-z]{2,}`), help, "a long option with one dash")
	for _, opt := range []string{"-c, --config FILE", "--json", "--table", "-P, --parallel", "-q, --quiet",
		"-f, --follow", "-n, --lines N", "--stderr", "--demo", "--readme", "--version", "-h, --help"} {
		assert.Contains(t, help, opt)
	}
	assert.NotContains(t, help, "demo-daemon", "internal options are not listed")
}

// What the help says of an option, the manual says too: the README and
// docs/commands.md, where usrsvc's options are described (and both are
// true: -q hides the success lines only).
func TestHelpAgreesWithREADME(t *testing.T) {
	t.Parallel()
	var manual string
	for _, f := range []string{"../../README.md", "../../docs/commands.md"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		manual += string(data)
	}
	help := helpText(t)
	assert.Contains(t, help, "-q, --quiet        print only warnings and errors")
	assert.Contains(t, manual, "`-q` — print only warnings and errors")
	for _, word := range []string{"--json", "--table", "--parallel", "-q", "--follow", "--lines", "--stderr",
		"--include", "--demo", "--readme", "--version", "--help", "**ls**", "**reload**", "**tail**", "**import**"} {
		assert.True(t, strings.Contains(manual, word), "neither the README nor docs/commands.md mentions %s", word)
	}
}

// A failure line is a sentence for every action.
func TestFailureWording(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "Failed to start web", failed(usrsvc.ActionStart, "web"))
	assert.Equal(t, "Failed to stop web", failed(usrsvc.ActionStop, "web"))
	assert.Equal(t, "Failed to restart web", failed(usrsvc.ActionRestart, "web"))
	assert.Equal(t, "Cannot get the status of web", failed(usrsvc.ActionStatus, "web"))
	assert.Equal(t, "reload of web failed", failed("reload", "web"))

	var out, errb bytes.Buffer
	printHuman(usrsvc.Result{Program: "w", Action: usrsvc.ActionStatus, Err: errors.New("boom")}, false, &out, &errb)
	assert.Contains(t, errb.String(), " - Cannot get the status of w (UNKNOWN_FAILURE, code 254): boom\n")
}

// usrsvc ls and usrsvc status --table: one aligned line per program, a
// header first; the codes are status's.
func TestStatusTable(t *testing.T) {
	t.Parallel()
	h := testproc.New(t, "sleep")
	w := newWorld(t, program("app", h.CommandLine())+program("idle", "sleep 1000")+
		program("off", "sleep 1000", "enabled = false"))
	code, _, stderr := w.run("start", "app")
	require.Equal(t, 0, code, stderr)
	t.Cleanup(func() { w.run("stop", "app") })

	code, table, stderr := w.run("ls")
	assert.Equal(t, 1, code, "idle is not running: the code of status all")
	assert.Empty(t, strings.ReplaceAll(stderr, rootWarning, ""))
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	require.Len(t, lines, 4, table)
	assert.Regexp(t, `^NAME +STATE +PID +UPTIME +RESTARTS +HEALTH +LAST EXIT$`, lines[0])
	assert.Regexp(t, `^app +running +[0-9]+ +[0-9]+s +- +- +-$`, lines[1])
	assert.Regexp(t, `^idle +stopped +- +- +- +- +-$`, lines[2])
	assert.Regexp(t, `^off +disabled +- +- +- +- +-$`, lines[3])
	col := strings.Index(lines[0], "STATE")
	for _, l := range lines[1:] {
		assert.NotEqual(t, byte(' '), l[col], "aligned: %q", l)
		assert.Equal(t, byte(' '), l[col-1], "aligned: %q", l)
	}

	code, same, _ := w.run("status", "--table", "all")
	assert.Equal(t, 1, code)
	assert.Equal(t, lines[0], strings.Split(same, "\n")[0])
	code, one, _ := w.run("ls", "app")
	assert.Equal(t, 0, code)
	assert.Len(t, strings.Split(strings.TrimRight(one, "\n"), "\n"), 2)
	code, _, stderr = w.run("ls", "nope")
	assert.Equal(t, 133, code)
	assert.Contains(t, stderr, "nope")
	code, _, stderr = w.run("ls", "--json")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, "usrsvc status --json all")
	code, _, stderr = w.run("start", "--table", "app")
	assert.Equal(t, 131, code)
	assert.Contains(t, stderr, "--table goes with status, not start")
}

// usrsvc(1) documents every option and action of the help.
func TestManPageCoversHelp(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../docs/man/usrsvc.1.md")
	require.NoError(t, err)
	help := helpText(t)
	opts := regexp.MustCompile(`(?m)^  (?:(-\w), )?\s*(--[\w-]+)`).FindAllStringSubmatch(help, -1)
	require.NotEmpty(t, opts)
	for _, m := range opts {
		for _, o := range m[1:] {
			if o != "" {
				assert.Contains(t, string(page), "**"+o+"**", "usrsvc(1) does not document %s", o)
			}
		}
	}
	for _, a := range actions {
		assert.Contains(t, string(page), "**"+a+"**", "usrsvc(1) does not document the action %s", a)
	}
}
