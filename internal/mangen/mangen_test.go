package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const src = "../../docs/man"

// needMan returns the path of man (Debian's man-db, which .ci/run
// installs); under CI a missing man fails the test, elsewhere it skips.
func needMan(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("man")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("man not found: .ci/run installs man-db (%v)", err)
	}
	t.Skipf("man not found (apt-get install man-db): %v", err)
	return ""
}

// Every page renders without a warning of the converter, then of man
// (groff's warnings), fits 80 columns, and stays short enough to skim.
func TestPagesRenderWithoutWarnings(t *testing.T) {
	man := needMan(t)
	pages, err := Pages(src)
	require.NoError(t, err)
	require.Len(t, pages, 4)
	dir := t.TempDir()
	for _, p := range pages {
		roff, err := p.Render()
		require.NoError(t, err)
		file := filepath.Join(dir, p.Name)
		require.NoError(t, os.WriteFile(file, roff, 0o644))

		cmd := exec.Command(man, "--warnings", "-l", file)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MANPAGER=cat", "PAGER=cat")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "man -l %s: %s", p.Name, stderr.String())
		assert.Empty(t, stderr.String(), "man --warnings -l %s", p.Name)
		if groff, err := exec.LookPath("groff"); err == nil {
			out, err := exec.Command(groff, "-ww", "-z", "-t", "-man", file).CombinedOutput()
			assert.NoError(t, err, p.Name)
			assert.Empty(t, string(out), "groff -ww -z %s", p.Name)
		}
		lines := strings.Split(stdout.String(), "\n")
		for _, l := range lines {
			assert.LessOrEqual(t, utf8.RuneCountInString(l), 80, "%s: a line wider than 80 columns: %q", p.Name, l)
		}
		assert.Less(t, len(lines), 300, "%s: %d lines is more than a skim", p.Name, len(lines))
		assert.NotContains(t, stdout.String(), "‐", "%s: a word is hyphenated", p.Name)
	}
}

// go run ./internal/mangen -o DIR writes a man directory.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"-src", src, "-o", dir}, &stdout, &stderr), stderr.String())
	for _, f := range []string{"man1/usrsvc.1", "man5/usrsvc.cfg.5", "man8/usrsvcd.8", "man8/usrsvcweb.8"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		assert.Contains(t, string(data), ".TH ")
		assert.Contains(t, string(data), "\n.nr HY 0\n.nh\n.ad l\n", "hyphenation off after .TH")
	}
	assert.Equal(t, 2, run([]string{"-src", src}, &stdout, &stderr), "-o is required")
	assert.Equal(t, 1, run([]string{"-src", t.TempDir(), "-o", dir}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "no manual page")
}

// The pages have the usual sections.
func TestPageSections(t *testing.T) {
	t.Parallel()
	pages, err := Pages(src)
	require.NoError(t, err)
	for _, p := range pages {
		data, err := os.ReadFile(p.Source)
		require.NoError(t, err)
		text := string(data)
		want := []string{"# NAME", "# SYNOPSIS", "# DESCRIPTION", "# FILES", "# SEE ALSO", "# EXAMPLE"}
		if p.Section != "5" {
			want = append(want, "# OPTIONS", "# EXIT STATUS", "# ENVIRONMENT")
		}
		for _, w := range want {
			assert.Contains(t, text, "\n"+w, "%s has no %s section", p.Name, w)
		}
		assert.Regexp(t, `^% `+regexp.QuoteMeta(strings.ToUpper(strings.TrimSuffix(p.Name, "."+p.Section)))+" "+p.Section+" ", text)
		assert.NotContains(t, text, "shared/", "%s: the pages stand alone", p.Name)
	}
}

// usrsvc.cfg(5) documents every key of the configuration reference.
func TestConfigPageHasEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(src, "usrsvc.cfg.5.md"))
	require.NoError(t, err)
	text := string(data)
	keys := map[string][]string{
		"[Main]": {"pidfile", "config_dir", "state_dir", "usrsvcd_stdout", "usrsvcd_stderr", "sendmail_path", "log_format",
			"stop_removed"},
		"[Web]": {"listen", "username", "password", "password_file", "allowed_hosts", "tls_cert", "tls_key", "read_only"},
		"[Program:NAME]": {"command", "useshell", "pidfile", "stdout", "stderr", "enabled", "autopid", "scan_for_process",
			"proctitle_re", "autostart", "maxrestarts", "max_restarts", "restart_delay", "success_seconds",
			"term_to_kill_seconds", "inherit_env", "defaults", "email_alerts", "directory", "stop_signal", "stop_group",
			"reload_signal", "autorestart", "exit_codes", "env_file", "umask", "limit_nofile", "limit_nproc", "limit_core",
			"limit_as", "limit_memlock", "numprocs", "ready", "ready_timeout", "depends_on"},
		"[[Monitor]]": {"monitor_after", "monitor_interval", "activityfile", "activityfile_limit", "rss_limit",
			"http_check", "http_expect", "http_body_re", "tcp_check", "exec_check", "check_timeout", "check_failures", "check_action"},
		"[[Hook]]":               {"events", "command", "timeout"},
		"[Group:NAME]":           {"programs"},
		"[[Env]]":                nil,
		"[DefaultSettings:NAME]": nil,
	}
	for section, names := range keys {
		assert.Contains(t, strings.NewReplacer(`\[`, "[", `\]`, "]").Replace(text), section)
		for _, k := range names {
			assert.Contains(t, text, "**"+k+"**", "usrsvc.cfg(5) does not document %s %s", section, k)
		}
	}
}
