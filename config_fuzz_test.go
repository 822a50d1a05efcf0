package usrsvc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// configWholeFileProblems are the messages that may concern a whole file (Line 0).
var configWholeFileProblems = []string{"config file not found", "not a regular file", "cannot read the config file",
	"is writable by group or others", "is owned by uid", "no [Main] section", "config file is larger than",
	"config file vanished"}

// FuzzLoadConfig loads arbitrary main files (with a config_dir holding one
// fixed file): LoadConfig must never panic, and every problem must name a
// file and, unless it concerns the whole file, a line.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(testMainSection + testProgramSrc([]string{"useshell = on", "command = cd /x && exec a 'b c'"}, "[[Env]]\nA=1\n")))
	f.Add([]byte("[Main]\npidfile=~/p\nconfig_dir = d\n[DefaultSettings:x]\n[[Monitoring]]\nrss_limit=1\n" +
		"[Program:a]\ndefaults=x\ncommand=\"a # b\" # c\n"))
	f.Add([]byte("[[Env]]\n[Main\nx = 'y\n[Program:all]\n\xff\n"))
	dir := writeConfigTree(f, map[string]string{"d/other.cfg": testProgramSrc(nil, "")})
	main := filepath.Join(dir, "usrsvc.cfg")
	f.Fuzz(func(t *testing.T, data []byte) {
		require.NoError(t, os.WriteFile(main, data, 0o600))
		// With problems, what stop and status use: only valid programs in
		// Programs.
		part, err := LoadConfig(main)
		cfg := part
		if err != nil {
			cfg = nil
		}
		if part != nil {
			for _, p := range part.Programs {
				require.Empty(t, p.Problems, p.Name)
			}
			for _, p := range part.Broken {
				require.NotEmpty(t, p.Problems, p.Name)
			}
		}
		if err == nil {
			require.NotNil(t, cfg)
			for _, p := range cfg.Programs {
				require.NotEmpty(t, titleRE(p), p.Name)
				require.NotEmpty(t, p.Stdout, p.Name)
			}
			return
		}
		var ce *ConfigError
		require.True(t, errors.As(err, &ce))
		for _, p := range parseProblems(ce.Problems) {
			require.NotEmpty(t, p.File, p.Msg)
			require.NotEmpty(t, p.Msg)
			if p.Line <= 0 {
				whole := false
				for _, w := range configWholeFileProblems {
					whole = whole || strings.Contains(p.Msg, w)
				}
				require.True(t, whole, "problem without a line: %s", p)
			}
		}
	})
}

// BenchmarkLoadConfig loads 200 programs spread over 10 config_dir files:
// "reload" as a reread does (the proctitle regexps are cached from the
// previous load), "cold" as the first load of a process does.
func BenchmarkLoadConfig(b *testing.B) {
	files := map[string]string{"usrsvc.cfg": testMainSection + "config_dir = conf.d\n" +
		"[DefaultSettings:base]\nstdout = ~/log/out.log\nemail_alerts = ops@example.com\n[[Env]]\nLANG = C.UTF-8\n"}
	for f := range 10 {
		var sb strings.Builder
		for i := range 20 {
			n := f*20 + i
			fmt.Fprintf(&sb, "[Program:prog%03d]\ndefaults = base\ncommand = /usr/bin/python3 -m app%d --port %d 'x y'\n"+
				"pidfile = run/prog%d.pid\nmaxrestarts = 5\nsuccess_seconds = 1.5\n[[Env]]\nPORT = %d\n"+
				"[[Monitor]]\nrss_limit = 100000\nmonitor_interval = 10\n\n", n, n, 8000+n, n, 8000+n)
		}
		files[fmt.Sprintf("conf.d/%02d.cfg", f)] = sb.String()
	}
	dir := writeConfigTree(b, files)
	main := filepath.Join(dir, "usrsvc.cfg")
	for _, cold := range []bool{false, true} {
		name := "reload"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if cold {
					procTitleRECache.Lock()
					procTitleRECache.m = nil
					procTitleRECache.Unlock()
				}
				cfg, err := LoadConfig(main)
				if err != nil || len(cfg.Programs) != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}
