package usrsvc

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/suggest"
)

// writeConfigTree writes files (path relative to a new temp dir → content) with
// safe modes and returns the dir.
func writeConfigTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
	return dir
}

const testMainSection = "[Main]\npidfile = /run/u/usrsvcd.pid\n"

// testProgramSrc is a [Program:p] section with command, pidfile and stdout set,
// then lines (a line setting one of those replaces it), then subs.
func testProgramSrc(lines []string, subs string) string {
	base := map[string]string{"command": "prog a", "pidfile": "/p.pid", "stdout": "/o.log"}
	for _, l := range lines {
		k, _, _ := strings.Cut(l, "=")
		delete(base, strings.ToLower(strings.TrimSpace(k)))
	}
	var b strings.Builder
	b.WriteString("[Program:p]\n")
	for _, k := range []string{"command", "pidfile", "stdout"} {
		if v, ok := base[k]; ok {
			b.WriteString(k + " = " + v + "\n")
		}
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(subs)
	return b.String()
}

// loadMainConfig loads a main file with the given content.
func loadMainConfig(t testing.TB, content string) (*Config, error) {
	t.Helper()
	dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": content})
	return LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
}

// problems returns the messages of err, which must be a *ConfigError.
func configProblems(t testing.TB, err error) []problem {
	t.Helper()
	var ce *ConfigError
	require.True(t, errors.As(err, &ce), "want a *ConfigError, got %v", err)
	require.NotEmpty(t, ce.Problems)
	return parseProblems(ce.Problems)
}

func testHomeDir(t testing.TB) string {
	h, err := home.Dir()
	require.NoError(t, err)
	return h
}

func TestLoadConfigProgramDefaults(t *testing.T) {
	cfg, err := loadMainConfig(t, testMainSection+testProgramSrc(nil, ""))
	require.NoError(t, err)
	p := cfg.Program("p")
	require.NotNil(t, p)
	want := newProgram("p", cfg.Path, 3)
	want.Command = "prog a"
	want.Args = []string{"prog", "a"}
	want.Pidfile, want.Stdout, want.Stderr = "/p.pid", "/o.log", "/o.log"
	want.title = &titleMatch{}
	want.Numprocs = 1
	assert.Equal(t, want, p)
	assert.Nil(t, p.ProcTitleRE, "the default is matched as a literal")
	assert.Equal(t, `^(?:prog|/(?:[^ ]*/)?prog) a$`, titleRE(p))
	re := regexp.MustCompile(titleRE(p))
	for _, title := range []string{"prog a", "/usr/bin/prog a", "python3 prog a", "xprog a", "prog ab", "prog a b", "sh -c prog a", "tail -f prog a"} {
		assert.Equal(t, re.MatchString(title), matchTitle(p, title), "the match agrees with the regexp on %q", title)
	}
	assert.True(t, matchTitle(p, "prog a"))
	assert.False(t, matchTitle(p, "xprog a"))
	assert.False(t, matchTitle(p, "tail -f prog a"), "a command line that ends with the program's never matches")
	assert.Equal(t, 2*time.Second, p.SuccessSeconds)
	assert.Equal(t, 8*time.Second, p.TermToKill)
	assert.Equal(t, 30*time.Second, p.MonitorAfter)
	assert.Equal(t, 5*time.Second, p.MonitorInterval)
	assert.Equal(t, []string{"p"}, cfg.names())
	assert.Nil(t, cfg.Program("P"), "names are case-sensitive")
	assert.Equal(t, []string{cfg.Path}, cfg.Files)
}

func TestLoadConfigProgramKeys(t *testing.T) {
	h := testHomeDir(t)
	tests := []struct {
		name    string
		lines   []string
		subs    string
		check   func(t *testing.T, p *Program)
		wantErr string // substring of the single expected problem
	}{
		{name: "useshell yes", lines: []string{"useshell = YES", "command = exec prog a"},
			check: func(t *testing.T, p *Program) {
				assert.True(t, p.UseShell)
				assert.Equal(t, []string{"prog", "a"}, p.Args)
			}},
		{name: "bool on", lines: []string{"enabled = off", "autopid = 0", "scan_for_process = No",
			"autostart = false", "autorestart = FALSE", "inherit_env = no"},
			check: func(t *testing.T, p *Program) {
				assert.False(t, p.Enabled || p.AutoPid || p.ScanForProcess || p.Autostart || p.Autorestart || p.InheritEnv)
			}},
		{name: "bool bad", lines: []string{"enabled = maybe"}, wantErr: `enabled = "maybe" is not a boolean`},
		{name: "bad useshell does not judge the command", lines: []string{"useshell = maybe", "command = a && b"},
			wantErr: `useshell = "maybe" is not a boolean`},
		{name: "bool empty", lines: []string{"autostart ="}, wantErr: `autostart = "" is not a boolean`},
		{name: "maxrestarts", lines: []string{"maxrestarts = 3"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, 3, p.MaxRestarts) }},
		{name: "max_restarts alias", lines: []string{"Max_Restarts = 5"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, 5, p.MaxRestarts) }},
		{name: "both restarts", lines: []string{"maxrestarts = 3", "max_restarts = 4"}, wantErr: "are the same key"},
		{name: "maxrestarts negative", lines: []string{"maxrestarts = -1"}, wantErr: "maxrestarts = -1 is negative"},
		{name: "maxrestarts float", lines: []string{"maxrestarts = 1.5"}, wantErr: "is not a whole number"},
		{name: "maxrestarts huge", lines: []string{"maxrestarts = 99999999999999999999"}, wantErr: "is not a whole number"},
		{name: "restart_delay", lines: []string{"restart_delay = 1.5"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, 1500*time.Millisecond, p.RestartDelay) }},
		{name: "restart_delay zero", lines: []string{"restart_delay = 0"},
			check: func(t *testing.T, p *Program) { assert.Zero(t, p.RestartDelay) }},
		{name: "restart_delay negative", lines: []string{"restart_delay = -1"}, wantErr: "out of range"},
		{name: "restart_delay word", lines: []string{"restart_delay = 5s"}, wantErr: "is not a number of seconds"},
		{name: "restart_delay inf", lines: []string{"restart_delay = inf"}, wantErr: "is not a number of seconds"},
		{name: "restart_delay huge", lines: []string{"restart_delay = 1e300"}, wantErr: "is not a number of seconds"},
		{name: "restart_delay too large", lines: []string{"restart_delay = 999999999999"}, wantErr: "too large"},
		{name: "success_seconds", lines: []string{"success_seconds = .25"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, 250*time.Millisecond, p.SuccessSeconds) }},
		{name: "success_seconds zero", lines: []string{"success_seconds = 0"}, wantErr: "> 0"},
		{name: "success_seconds tiny", lines: []string{"success_seconds = 0.0000000001"}, wantErr: "> 0"},
		{name: "term_to_kill_seconds zero", lines: []string{"term_to_kill_seconds = 0"},
			check: func(t *testing.T, p *Program) { assert.Zero(t, p.TermToKill) }},
		{name: "term_to_kill_seconds", lines: []string{"TERM_TO_KILL_SECONDS = 3"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, 3*time.Second, p.TermToKill) }},
		{name: "term_to_kill_seconds negative", lines: []string{"term_to_kill_seconds = -2"}, wantErr: "≥ 0"},
		{name: "pidfile relative is in home", lines: []string{"pidfile = run/p.pid"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, filepath.Join(h, "run/p.pid"), p.Pidfile) }},
		{name: "pidfile tilde", lines: []string{"pidfile = ~/p.pid"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, filepath.Join(h, "p.pid"), p.Pidfile) }},
		{name: "pidfile missing: in the state directory", lines: []string{"pidfile ="},
			check: func(t *testing.T, p *Program) { assert.True(t, strings.HasSuffix(p.Pidfile, "/pids/p.pid"), p.Pidfile) }},
		{name: "stdout tilde", lines: []string{"stdout = ~/log/o.log"},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, filepath.Join(h, "log/o.log"), p.Stdout)
				assert.Equal(t, p.Stdout, p.Stderr)
			}},
		{name: "stdout relative", lines: []string{"stdout = o.log"}, wantErr: "stdout = o.log must be an absolute path"},
		{name: "stdout missing: in the state directory", lines: []string{"stdout = ''"},
			check: func(t *testing.T, p *Program) { assert.True(t, strings.HasSuffix(p.Stdout, "/logs/p.log"), p.Stdout) }},
		{name: "stderr stdout", lines: []string{"stderr = STDOUT"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, "/o.log", p.Stderr) }},
		{name: "stderr same", lines: []string{"stderr = /o.log"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, "/o.log", p.Stderr) }},
		{name: "stderr other", lines: []string{"stderr = /e//x/../e.log"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, "/e/e.log", p.Stderr) }},
		{name: "stderr relative", lines: []string{"stderr = e.log"}, wantErr: "stderr = e.log must be an absolute path"},
		{name: "proctitle_re", lines: []string{`proctitle_re = ^python3 .*app\.py`},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, `^python3 .*app\.py`, p.ProcTitleRE.String())
			}},
		{name: "proctitle_re bad", lines: []string{"proctitle_re = a(b"}, wantErr: "proctitle_re does not compile: error parsing regexp: missing closing )"},
		{name: "proctitle_re empty", lines: []string{"proctitle_re ="}, wantErr: "proctitle_re is empty"},
		{name: "email_alerts", lines: []string{`email_alerts = a@x.org, "Doe, Jo" <jo@x.org>,Bob <b@x.org>`},
			check: func(t *testing.T, p *Program) {
				require.Len(t, p.EmailAlerts, 3)
				assert.Equal(t, "a@x.org", p.EmailAlerts[0].Address)
				assert.Equal(t, "Doe, Jo", p.EmailAlerts[1].Name)
				assert.Equal(t, "b@x.org", p.EmailAlerts[2].Address)
			}},
		{name: "email_alerts empty", lines: []string{"email_alerts ="},
			check: func(t *testing.T, p *Program) { assert.Empty(t, p.EmailAlerts) }},
		{name: "email_alerts bad", lines: []string{"email_alerts = a@x.org, not an address"}, wantErr: `"not an address" is not a valid email address`},
		{name: "email_alerts double comma", lines: []string{"email_alerts = a@x.org,,b@x.org"}, wantErr: "empty address"},
		{name: "email_alerts CR", lines: []string{"email_alerts = a@x.org\rBcc: evil@x.org"}, wantErr: "line break"},
		{name: "unknown key", lines: []string{"autostrat = true"}, wantErr: "unknown key autostrat in [Program:p]; did you mean autostart?"},
		{name: "unknown key far", lines: []string{"zzz = 1"}, wantErr: "unknown key zzz in [Program:p]"},
		{name: "monitor key at top", lines: []string{"rss_limit = 5"}, wantErr: "key rss_limit does not belong in [Program:p]; move it to a [[Monitor]] subsection"},
		{name: "case-insensitive keys", lines: []string{"Command = prog b", "AutoStart = False"},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, []string{"prog", "b"}, p.Args)
				assert.False(t, p.Autostart)
			}},
		{name: "same key two spellings", lines: []string{"enabled = 1", "ENABLED = 1"}, wantErr: "ENABLED and enabled (line 7) are the same key"},
		{name: "env", subs: "[[Env]]\nPATH = /bin:/usr/bin\n_X1 = 'a b'\nEMPTY =\n",
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, []string{"PATH=/bin:/usr/bin", "_X1=a b", "EMPTY="}, p.Env)
			}},
		{name: "env bad name", subs: "[[env]]\n1X = a\n", wantErr: `[[Env]] key "1X" is not a valid environment variable name`},
		{name: "monitor", subs: "  [[Monitor]]\n  monitor_after = 0\n  monitor_interval = 0.5\n  rss_limit = 1024\n" +
			"  activityfile = ~/act\n  activityfile_limit = 60\n",
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, time.Duration(0), p.MonitorAfter)
				assert.Equal(t, 500*time.Millisecond, p.MonitorInterval)
				assert.EqualValues(t, 1024, p.RSSLimitKB)
				assert.Equal(t, filepath.Join(h, "act"), p.ActivityFile)
				assert.Equal(t, time.Minute, p.ActivityFileLimit)
			}},
		{name: "monitoring alias", subs: "[[Monitoring]]\nRSS_Limit = 7\n",
			check: func(t *testing.T, p *Program) { assert.EqualValues(t, 7, p.RSSLimitKB) }},
		{name: "monitor and monitoring", subs: "[[Monitor]]\nrss_limit = 7\n[[Monitoring]]\nrss_limit = 8\n", wantErr: "[[Monitoring]] repeats [[Monitor]] (line 7)"},
		{name: "monitor interval zero", subs: "[[Monitor]]\nmonitor_interval = 0\n", wantErr: "monitor_interval = 0 is out of range"},
		{name: "monitor after negative", subs: "[[Monitor]]\nmonitor_after = -1\n", wantErr: "monitor_after = -1 is out of range"},
		{name: "rss_limit negative", subs: "[[Monitor]]\nrss_limit = -1\n", wantErr: "rss_limit = -1 is negative"},
		{name: "rss_limit word", subs: "[[Monitor]]\nrss_limit = 1G\n", wantErr: `rss_limit = "1G" is not a whole number`},
		{name: "activityfile without limit", subs: "[[Monitor]]\nactivityfile = /a\n", wantErr: "activityfile_limit is not"},
		{name: "activityfile empty", subs: "[[Monitor]]\nactivityfile =\n",
			check: func(t *testing.T, p *Program) { assert.Empty(t, p.ActivityFile) }},
		{name: "activityfile relative", subs: "[[Monitor]]\nactivityfile = a\nactivityfile_limit = 5\n", wantErr: "must be an absolute path"},
		{name: "activityfile_limit zero", subs: "[[Monitor]]\nactivityfile = /a\nactivityfile_limit = 0\n", wantErr: "activityfile_limit = 0 is out of range"},
		{name: "program key in monitor", subs: "[[Monitor]]\nautostart = 0\n", wantErr: "key autostart does not belong in [[Monitor]] of [Program:p]"},
		{name: "unknown subsection", subs: "[[Envs]]\nA = 1\n", wantErr: "unknown subsection [[Envs]] in [Program:p]: only [[Env]], [[Monitor]] and [[Hook]] exist; did you mean Env?"},
		{name: "command missing", lines: []string{"useshell = false"}, subs: "", check: nil, wantErr: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadMainConfig(t, testMainSection+testProgramSrc(tt.lines, tt.subs))
			if tt.wantErr != "" {
				ps := configProblems(t, err)
				require.Len(t, ps, 1, "%v", err)
				assert.Contains(t, ps[0].Msg, tt.wantErr)
				assert.Positive(t, ps[0].Line)
				return
			}
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, cfg.Program("p"))
			}
		})
	}
}

func TestLoadConfigCommands(t *testing.T) {
	h := testHomeDir(t)
	tests := []struct {
		command  string
		useshell bool
		re       string // proctitle_re line, "" for none
		args     []string
		wantErr  string
	}{
		{command: `python3 app.py --x 'a b' "c \"d\"" e\ f`, args: []string{"python3", "app.py", "--x", "a b", `c "d"`, "e f"}},
		{command: `~/bin/x ~ '~/q' a~`, args: []string{h + "/bin/x", h, "~/q", "a~"}},
		{command: `find . -name *.log`, args: []string{"find", ".", "-name", "*.log"}},
		{command: `echo a{b,c} '$HOME'`, args: []string{"echo", "a{b,c}", "$HOME"}},
		{command: `"/opt/my app/bin" --flag`, args: []string{"/opt/my app/bin", "--flag"}},
		{command: `x $HOME`, wantErr: "command uses the parameter expansion $HOME, which needs a shell (set useshell = true to run it through a shell)"},
		{command: `x "${X}"`, wantErr: "the parameter expansion ${X}"},
		{command: `x $(date)`, wantErr: "the command substitution $(date)"},
		{command: "x `date`", wantErr: "the command substitution `date`"},
		{command: `x $((1+2))`, wantErr: "the arithmetic expansion"},
		{command: `x > out`, wantErr: "the redirection > out"},
		{command: `x 2>&1`, wantErr: "the redirection 2>&1"},
		{command: `a && b`, wantErr: "the operator &&"},
		{command: `a || b`, wantErr: "the operator ||"},
		{command: `a | b`, wantErr: "the operator |"},
		{command: `a; b`, wantErr: "several commands"},
		{command: `a &`, wantErr: "ends with the & operator"},
		{command: `FOO=1 prog`, wantErr: "environment assignment FOO=…: put FOO in an [[Env]] subsection"},
		{command: `(prog)`, wantErr: "subshell"},
		{command: `{ prog; }`, wantErr: "block"},
		{command: `if a; then b; fi`, wantErr: "compound command"},
		{command: `! prog`, wantErr: "the ! operator"},
		{command: `"prog #comment"`, wantErr: "shell comment"},
		{command: `prog #configobj comment`, args: []string{"prog"}},
		{command: `'#' x`, args: []string{"#", "x"}},
		{command: `cd /tmp`, wantErr: `"cd", a shell builtin`},
		{command: `x 'unterminated`, wantErr: "command is not valid shell syntax"},
		{command: `x "unterminated`, wantErr: "command is not valid shell syntax"},
		{command: ``, wantErr: "command is empty"},
		{command: `"'#'"`, args: []string{"#"}},
		{useshell: true, command: `cd /tmp && exec python3 app.py --x 'a b'`, args: []string{"python3", "app.py", "--x", "a b"}},
		{useshell: true, command: `FOO=1 exec /usr/bin/env "x y" z\ w`, args: []string{"/usr/bin/env", "x y", "z w"}},
		{useshell: true, command: `cd /x; nginx -g 'daemon off;' > log 2>&1`, args: []string{"nginx", "-g", "daemon off;"}},
		{useshell: true, command: `a || b && c d`, args: []string{"c", "d"}},
		{useshell: true, command: `exec ~/bin/run`, args: []string{h + "/bin/run"}},
		{useshell: true, command: `a | b`, wantErr: "a useshell pipeline needs an explicit proctitle_re (its last command is the sink)"},
		{useshell: true, command: `a | b`, re: "b$", args: nil},
		{useshell: true, command: `cd /x && exec $PROG`, wantErr: "cannot tell which process this useshell command runs"},
		{useshell: true, command: `exec prog *.txt`, wantErr: "set proctitle_re"},
		{useshell: true, command: `exec prog {a,b}`, wantErr: "set proctitle_re"},
		{useshell: true, command: `exec prog $HOME`, re: "prog", args: nil},
		{useshell: true, command: `cd /x && (prog)`, wantErr: "not a simple command"},
		{useshell: true, command: `exec -a name prog`, wantErr: "exec with options"},
		{useshell: true, command: `FOO=1`, wantErr: "runs no program"},
		{useshell: true, command: `a && (`, wantErr: "not valid shell syntax"},
		{useshell: true, command: `# only`, wantErr: "command is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			lines := []string{"command = " + tt.command}
			if tt.useshell {
				lines = append(lines, "useshell = true")
			}
			if tt.re != "" {
				lines = append(lines, "proctitle_re = "+tt.re)
			}
			cfg, err := loadMainConfig(t, testMainSection+testProgramSrc(lines, ""))
			if tt.wantErr != "" {
				ps := configProblems(t, err)
				require.Len(t, ps, 1, "%v", err)
				assert.Equal(t, 6, ps[0].Line, "reported at the command line")
				assert.Contains(t, ps[0].Msg, tt.wantErr)
				return
			}
			require.NoError(t, err)
			p := cfg.Program("p")
			assert.Equal(t, tt.args, p.Args)
			if tt.re == "" {
				assert.Nil(t, p.ProcTitleRE)
				assert.True(t, matchTitle(p, strings.Join(tt.args, " ")))
				assert.False(t, matchTitle(p, "vim "+strings.Join(tt.args, " ")))
				assert.True(t, regexp.MustCompile(titleRE(p)).MatchString(strings.Join(tt.args, " ")))
			} else {
				assert.NotNil(t, p.ProcTitleRE)
			}
		})
	}
}

func TestLoadConfigMain(t *testing.T) {
	h := testHomeDir(t)
	tests := []struct {
		name    string
		main    string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{name: "defaults", main: "[Main]\npidfile = ~/d.pid\n", check: func(t *testing.T, c *Config) {
			assert.Equal(t, mainOf(&Config{DaemonPidfile: filepath.Join(h, "d.pid"), StateDir: filepath.Join(h, ".local/state/usrsvc"),
				LogFormat: "text", MainLine: 1}), mainOf(c))
		}},
		{name: "all keys", main: "[main]\nPIDFILE = /d.pid\nstate_dir = /s\nusrsvcd_stdout = /o\nusrsvcd_stderr = /e\n" +
			"sendmail_path = /usr/lib/sendmail\nlog_format = JSON\n", check: func(t *testing.T, c *Config) {
			assert.Equal(t, mainOf(&Config{DaemonPidfile: "/d.pid", StateDir: "/s", DaemonStdout: "/o", DaemonStderr: "/e",
				SendmailPath: "/usr/lib/sendmail", LogFormat: "json", MainLine: 1}), mainOf(c))
		}},
		{name: "stderr stdout and auto", main: "[Main]\npidfile = /d\nusrsvcd_stderr = stdout\nsendmail_path = auto\n",
			check: func(t *testing.T, c *Config) {
				assert.Empty(t, c.DaemonStderr)
				assert.Empty(t, c.SendmailPath)
			}},
		{name: "no main", main: testProgramSrc(nil, ""), wantErr: "no [Main] section"},
		{name: "no pidfile", main: "[Main]\nstate_dir = /s\n", wantErr: "[Main] is missing the required key pidfile"},
		{name: "relative pidfile", main: "[Main]\npidfile = d.pid\n", wantErr: "pidfile = d.pid must be an absolute path"},
		{name: "relative state_dir", main: testMainSection + "state_dir = s\n", wantErr: "state_dir = s must be an absolute path"},
		{name: "relative usrsvcd_stdout", main: testMainSection + "usrsvcd_stdout = o\n", wantErr: "must be an absolute path"},
		{name: "relative usrsvcd_stderr", main: testMainSection + "usrsvcd_stderr = e\n", wantErr: "must be an absolute path"},
		{name: "relative sendmail", main: testMainSection + "sendmail_path = sendmail\n", wantErr: "must be an absolute path"},
		{name: "log_format", main: testMainSection + "log_format = xml\n", wantErr: `log_format = "xml" is not a log format`},
		{name: "unknown key", main: testMainSection + "state_dri = /x\n", wantErr: "unknown key state_dri in [Main]; did you mean state_dir?"},
		{name: "program key", main: testMainSection + "command = x\n", wantErr: "key command does not belong in [Main]"},
		{name: "missing config_dir", main: testMainSection + "config_dir = nope\n", wantErr: "config_dir " + "$DIR/nope does not exist"},
		{name: "two mains", main: testMainSection + testMainSection, wantErr: "duplicate [Main] section (first at line 1)"},
		{name: "main with name", main: "[Main:x]\npidfile = /d\n", wantErr: "[Main:x]: the [Main] section takes no name"},
		{name: "main subsection", main: testMainSection + "[[Env]]\n", wantErr: "[Main] has no subsections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadMainConfig(t, tt.main)
			if tt.wantErr != "" {
				ps := configProblems(t, err)
				require.Len(t, ps, 1, "%v", err)
				msg := strings.ReplaceAll(ps[0].Msg, filepath.Dir(ps[0].File), "$DIR")
				assert.Contains(t, msg, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLoadConfigDefaultSettings(t *testing.T) {
	dir := writeConfigTree(t, map[string]string{
		"usrsvc.cfg": testMainSection + "config_dir = conf.d\n" +
			"[DefaultSettings:base]\nstdout = /base.log\nautorestart = no\nemail_alerts = ops@x.org\n" +
			"[[Env]]\nA = 1\nB = 2\n[[Monitor]]\nrss_limit = 100\nmonitor_after = 1\n",
		"conf.d/b.cfg": "[Program:web]\ndefaults = base\ncommand = web\npidfile = /w.pid\nautorestart = yes\n" +
			"[[Env]]\nB = 3\nC = 4\n[[Monitor]]\nmonitor_after = 2\n",
		"conf.d/a.cfg":   "[Program:api]\ndefaults = base\ncommand = api\npidfile = /a.pid\n",
		"conf.d/.x.cfg":  "garbage",
		"conf.d/c.conf":  "garbage",
		"conf.d/c.cfg~":  "garbage",
		"conf.d/z.cfg":   "# empty\n",
		"other/ignored":  "",
		"conf.d/d.cfg":   "[Program:plain]\ncommand = p\npidfile = /p.pid\nstdout = /p.log\n",
		"conf.d/sub/x.x": "",
	})
	cfg, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
	require.NoError(t, err)
	assert.Equal(t, []string{"usrsvc.cfg", "conf.d/a.cfg", "conf.d/b.cfg", "conf.d/d.cfg", "conf.d/z.cfg"},
		relPaths(dir, cfg.Files))
	assert.Equal(t, filepath.Join(dir, "conf.d"), cfg.ConfigDir)
	assert.Equal(t, []string{"api", "plain", "web"}, cfg.names())

	web := cfg.Program("web")
	assert.Equal(t, "base", web.Defaults)
	assert.Equal(t, "/base.log", web.Stdout)
	assert.True(t, web.Autorestart, "explicit keys win")
	assert.Equal(t, []string{"A=1", "B=3", "C=4"}, web.Env)
	assert.Equal(t, 2*time.Second, web.MonitorAfter)
	assert.EqualValues(t, 100, web.RSSLimitKB)
	require.Len(t, web.EmailAlerts, 1)
	assert.Equal(t, filepath.Join(dir, "conf.d/b.cfg"), web.File)
	assert.Equal(t, 1, web.Line)

	api := cfg.Program("api")
	assert.False(t, api.Autorestart)
	assert.Equal(t, []string{"A=1", "B=2"}, api.Env)
	assert.Equal(t, time.Second, api.MonitorAfter)

	plain := cfg.Program("plain")
	assert.Empty(t, plain.Defaults)
	assert.True(t, plain.Autorestart)
}

func relPaths(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i], _ = filepath.Rel(dir, p)
	}
	return out
}

func TestLoadConfigStructureErrors(t *testing.T) {
	dir := writeConfigTree(t, map[string]string{
		"usrsvc.cfg": testMainSection + "config_dir = conf.d\n" +
			"[DefaultSettings:base]\ndefaults = other\nstdout = rel\n" +
			"[Program:web]\ndefaults = bsae\ncommand = w\npidfile = /w\nstdout = /o\n",
		"conf.d/a.cfg": "[Main]\npidfile = /x\n" +
			"[Program:web]\ncommand = w2\n" +
			"[DefaultSettings:base]\n" +
			"[Program:all]\n[Program:bad name]\n[Program]\n[Programs:x]\n" +
			"[[Env]]\nX = 1\n" + // keys of an unknown section are not reported again
			"[Program:ok]\ncommand = a\npidfile = /a\nstdout = /a\n",
	})
	_, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
	ps := configProblems(t, err)
	var got []string
	for _, p := range ps {
		rel, _ := filepath.Rel(dir, p.File)
		got = append(got, rel+":"+strconv.Itoa(p.Line)+": "+p.Msg)
	}
	assert.Equal(t, []string{
		"usrsvc.cfg:5: defaults cannot be used in a [DefaultSettings:...] section (they do not chain); set the keys here directly",
		"usrsvc.cfg:6: stdout = rel must be an absolute path (it may start with ~/)",
		"usrsvc.cfg:8: defaults = bsae names no [DefaultSettings:bsae] section; did you mean base?",
		"conf.d/a.cfg:1: [Main] is only allowed in the main config file " + filepath.Join(dir, "usrsvc.cfg") + "; move its keys there",
		"conf.d/a.cfg:3: duplicate program [Program:web]: first defined at " + filepath.Join(dir, "usrsvc.cfg") + ":7; program names must be unique across all config files",
		"conf.d/a.cfg:5: duplicate [DefaultSettings:base]: first defined at " + filepath.Join(dir, "usrsvc.cfg") + ":4; rename or merge them",
		`conf.d/a.cfg:6: a program cannot be named "all": "all" means every program on the command line; rename it`,
		`conf.d/a.cfg:7: Program name "bad name" may only hold letters, digits, '_', '.' and '-'`,
		"conf.d/a.cfg:8: [Program] needs a name: [Program:NAME]",
		"conf.d/a.cfg:9: unknown section [Programs:x]: sections are [Main], [Web], [Program:NAME], [DefaultSettings:NAME] and [Group:NAME]; did you mean Program?",
	}, got)
}

func TestLoadConfigFiles(t *testing.T) {
	t.Run("main missing", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.cfg")
		_, err := LoadConfig(p)
		ps := configProblems(t, err)
		require.Len(t, ps, 1)
		assert.Equal(t, problem{File: p, Line: 0, Msg: "config file not found: create it (see man usrsvc.cfg, or " +
			"docs/configuration.md in usrsvc's source), or point --config or USRSVC_CONFIG at another file"}, ps[0])
		assert.Equal(t, exitcode.InvalidConfig, exitcode.Of(err))
		assert.ErrorIs(t, err, ErrInvalidConfig)
	})
	t.Run("main is a directory", func(t *testing.T) {
		_, err := LoadConfig(t.TempDir())
		assert.Contains(t, configProblems(t, err)[0].Msg, "not a regular file")
	})
	t.Run("a FIFO or a directory named *.cfg", func(t *testing.T) {
		dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": testMainSection + "config_dir = d\n", "d/a.cfg": ""})
		require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "d/zz.cfg"), 0o600))
		require.NoError(t, os.Mkdir(filepath.Join(dir, "d/dir.cfg"), 0o700))
		require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "main-fifo.cfg"), 0o600))
		load := func(path string) error {
			done := make(chan error, 1)
			go func() { _, err := LoadConfig(path); done <- err }()
			select {
			case err := <-done:
				return err
			case <-time.After(10 * time.Second):
				t.Fatalf("LoadConfig(%s) blocks: it opened a FIFO for reading", path)
				return nil
			}
		}
		ps := configProblems(t, load(filepath.Join(dir, "usrsvc.cfg")))
		require.Len(t, ps, 2)
		assert.Equal(t, filepath.Join(dir, "d/dir.cfg")+": not a regular file but a directory; a config file must be a plain file: remove it or rename it so that it does not end in .cfg", ps[0].String())
		assert.Equal(t, filepath.Join(dir, "d/zz.cfg")+": not a regular file but a named pipe (FIFO); a config file must be a plain file: remove it or rename it so that it does not end in .cfg", ps[1].String())
		ps = configProblems(t, load(filepath.Join(dir, "main-fifo.cfg")))
		require.Len(t, ps, 1)
		assert.Contains(t, ps[0].String(), "main-fifo.cfg: not a regular file but a named pipe (FIFO)")

		// A symlink to a plain file is fine.
		require.NoError(t, os.Remove(filepath.Join(dir, "d/zz.cfg")))
		require.NoError(t, os.Remove(filepath.Join(dir, "d/dir.cfg")))
		require.NoError(t, os.Symlink(filepath.Join(dir, "d/a.cfg"), filepath.Join(dir, "d/link.cfg")))
		require.NoError(t, load(filepath.Join(dir, "usrsvc.cfg")))
	})
	t.Run("writable by others", func(t *testing.T) {
		dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": testMainSection + "config_dir = d\n", "d/a.cfg": ""})
		main := filepath.Join(dir, "usrsvc.cfg")
		require.NoError(t, os.Chmod(main, 0o620))
		require.NoError(t, os.Chmod(filepath.Join(dir, "d/a.cfg"), 0o602))
		require.NoError(t, os.Chmod(filepath.Join(dir, "d"), 0o777))
		_, err := LoadConfig(main)
		ps := configProblems(t, err)
		require.Len(t, ps, 3)
		assert.Equal(t, problem{File: main, Msg: "config file is writable by group or others (mode 0620), so another " +
			"user could make usrsvc run their commands; refused: run chmod go-w " + main}, ps[0])
		assert.Equal(t, filepath.Join(dir, "d"), ps[1].File)
		assert.Contains(t, ps[1].Msg, "config_dir is writable by group or others (mode 0777)")
		assert.Contains(t, ps[2].Msg, "chmod go-w "+filepath.Join(dir, "d/a.cfg"))
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to give a file to another user")
		}
		dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": testMainSection})
		main := filepath.Join(dir, "usrsvc.cfg")
		require.NoError(t, os.Chown(main, 65534, 65534))
		_, err := LoadConfig(main)
		ps := configProblems(t, err)
		require.Len(t, ps, 1)
		assert.Contains(t, ps[0].Msg, "owned by uid 65534, neither you (uid 0) nor root")
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Getuid() == 0 {
			t.Skip("root reads every file")
		}
		dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": testMainSection})
		main := filepath.Join(dir, "usrsvc.cfg")
		require.NoError(t, os.Chmod(main, 0))
		_, err := LoadConfig(main)
		assert.Contains(t, configProblems(t, err)[0].Msg, "cannot read the config file: open: permission denied")
	})
	t.Run("config_dir is the main file's dir", func(t *testing.T) {
		dir := writeConfigTree(t, map[string]string{"usrsvc.cfg": testMainSection + "config_dir = .\n", "p.cfg": testProgramSrc(nil, "")})
		cfg, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
		require.NoError(t, err)
		assert.Equal(t, []string{"p"}, cfg.names())
		assert.Len(t, cfg.Files, 2)
	})
	t.Run("syntax errors everywhere are all reported", func(t *testing.T) {
		dir := writeConfigTree(t, map[string]string{
			"usrsvc.cfg": testMainSection + "config_dir = d\nbad line\n",
			"d/a.cfg":    "[Program:a\nx = 'y\n",
			"d/b.cfg":    "[[Env]]\n",
		})
		_, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
		ps := configProblems(t, err)
		require.Len(t, ps, 4, "%v", err)
		assert.Equal(t, 4, ps[0].Line)
		assert.Equal(t, filepath.Join(dir, "d/a.cfg"), ps[1].File)
		assert.Equal(t, 1, ps[1].Line)
		assert.Equal(t, 2, ps[2].Line)
		assert.Equal(t, filepath.Join(dir, "d/b.cfg"), ps[3].File)
	})
}

func TestDefaultConfigPath(t *testing.T) {
	t.Setenv("USRSVC_CONFIG", "/etc/x.cfg")
	assert.Equal(t, "/etc/x.cfg", home.ConfigPath())
	t.Setenv("USRSVC_CONFIG", "")
	t.Setenv("HOME", "/home/someone")
	assert.Equal(t, "/home/someone/usrsvc.cfg", home.ConfigPath())
}

func TestLoadConfigDefaultPath(t *testing.T) {
	dir := writeConfigTree(t, map[string]string{"c.cfg": testMainSection})
	t.Setenv("USRSVC_CONFIG", filepath.Join(dir, "c.cfg"))
	cfg, err := LoadConfig("")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "c.cfg"), cfg.Path)
	assert.Empty(t, cfg.Programs)
}

func TestSuggest(t *testing.T) {
	keys := append(append([]string{}, cfgProgramKeys...), cfgMonitorKeys...)
	for word, want := range map[string]string{
		"comand": "command", "usershell": "useshell", "max_restart": "maxrestarts", "autorestrat": "autorestart",
		"PIDFILE": "pidfile", "x": "", "totally_unrelated": "", "rss": "", "activityfile_limt": "activityfile_limit",
	} {
		assert.Equal(t, want, suggest.Closest(word, keys), word)
	}
}

// mainOf is c's [Main] section.
func mainOf(c *Config) Config {
	return Config{DaemonPidfile: c.DaemonPidfile, ConfigDir: c.ConfigDir, StateDir: c.StateDir, DaemonStdout: c.DaemonStdout,
		DaemonStderr: c.DaemonStderr, SendmailPath: c.SendmailPath, LogFormat: c.LogFormat, MainLine: c.MainLine}
}
