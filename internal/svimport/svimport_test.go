package svimport

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/shellcmd"
	"github.com/usrsvc/usrsvc/internal/supervisordconf"
)

var update = flag.Bool("update", false, "rewrite the golden files and the migration guide's tables")

// testOptions make a conversion independent of the machine.
var testOptions = Options{Include: true, Environ: []string{"HOME=/home/u", "PATH=/usr/bin:/bin"}, Hostname: "host1", Home: "/home/u"}

// convertText converts a supervisord configuration given as text.
func convertText(t *testing.T, text string) (*Result, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "supervisord.conf")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	res, err := Convert(p, testOptions)
	require.NoError(t, err)
	return res, res.Single()
}

// Testdata is the real-world configurations of testdata/supervisord, by
// the name of their golden file.
var Testdata = map[string]string{
	"sample":         "sample.conf",
	"laravel-worker": "laravel-worker.conf",
	"celery":         "celery/supervisord.conf",
	"gunicorn-nginx": "gunicorn-nginx.conf",
	"docker":         "docker.conf",
	"debian":         "debian/supervisord.conf",
}

const testdata = "../../testdata/supervisord"

// Each real-world configuration converts to its golden file (go test
// -update rewrites them), and the output reads as a usrsvc config file.
func TestGolden(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs(testdata)
	require.NoError(t, err)
	for name, file := range Testdata {
		res, err := Convert(filepath.Join(testdata, file), testOptions)
		require.NoError(t, err, name)
		got := strings.ReplaceAll(res.Single(), abs, "testdata/supervisord")
		got += "\n# stderr:\n# " + strings.Join(append(res.Warnings, res.Summary()), "\n# ") + "\n"
		golden := filepath.Join(testdata, name+".usrsvc.golden")
		if *update {
			require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
		}
		want, err := os.ReadFile(golden)
		require.NoError(t, err)
		assert.Equal(t, string(want), got, "%s: go test ./internal/svimport -update rewrites %s", name, golden)
		_, err = configobj.Parse(name, []byte(res.Single()))
		assert.NoError(t, err, name)
		for _, f := range res.Files() {
			_, err = configobj.Parse(f.Name, []byte(f.Text))
			assert.NoError(t, err, "%s: %s", name, f.Name)
		}
		assert.NotContains(t, got, "123", "%s: a password of the sample leaked", name)
	}
}

// The guide's tables are the rules' (go test -update rewrites them).
func TestMigrationDoc(t *testing.T) {
	t.Parallel()
	path := "../../docs/migrating-from-supervisord.md"
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	doc := string(data)
	i, j := strings.Index(doc, DocBegin), strings.Index(doc, DocEnd)
	require.True(t, i >= 0 && j > i, "%s lacks the markers of its generated tables", path)
	want := doc[:i] + DocBegin + "\n" + MappingMarkdown() + "\n" + doc[j:]
	if *update && want != doc {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
		doc = want
	}
	assert.Equal(t, want, doc, "go test ./internal/svimport -run TestMigrationDoc -update rewrites the tables")
}

// Every key of supervisord's documentation has a rule (the keys of the
// sections usrsvc does not convert are shown whole).
func TestEveryKeyHasARule(t *testing.T) {
	t.Parallel()
	keys := map[string][]string{
		"unix_http_server": {"file", "chmod", "chown", "username", "password"},
		"inet_http_server": {"port", "username", "password"},
		"supervisord": {"logfile", "logfile_maxbytes", "logfile_backups", "loglevel", "pidfile", "umask", "nodaemon",
			"silent", "minfds", "minprocs", "nocleanup", "childlogdir", "user", "directory", "strip_ansi", "environment", "identifier"},
		"supervisorctl": {"serverurl", "username", "password", "prompt", "history_file"},
		"program": {"command", "process_name", "numprocs", "numprocs_start", "priority", "autostart", "startsecs",
			"startretries", "autorestart", "exitcodes", "stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup", "user",
			"redirect_stderr", "stdout_logfile", "stdout_logfile_maxbytes", "stdout_logfile_backups", "stdout_capture_maxbytes",
			"stdout_events_enabled", "stdout_syslog", "stderr_logfile", "stderr_logfile_maxbytes", "stderr_logfile_backups",
			"stderr_capture_maxbytes", "stderr_events_enabled", "stderr_syslog", "environment", "directory", "umask", "serverurl"},
		"include": {"files"},
		"group":   {"programs", "priority"},
	}
	for kind, names := range keys {
		k := kindOf(kind)
		require.NotNil(t, k, kind)
		var have []string
		for _, r := range k.rules {
			have = append(have, r.key)
		}
		assert.ElementsMatch(t, names, have, kind)
	}
	for _, kind := range []string{"eventlistener", "fcgi-program", "rpcinterface", "ctlplugin"} {
		assert.NotEmpty(t, kindOf(kind).why, kind)
	}
}

func TestConvertPrograms(t *testing.T) {
	t.Parallel()
	res, out := convertText(t, `
[program:w]
command = /usr/bin/app --url=http://x/?a=1&b=2 $HOME "two words" %(ENV_HOME)s
numprocs = 3
process_name = w-%(process_num)d
stdout_logfile = /var/log/w-%(process_num)02d.log
stderr_logfile = NONE
startsecs = 0
startretries = 0
autorestart = Unexpected
exitcodes = 0,3
stopsignal = 3
stopwaitsecs = 5
killasgroup = true
umask = 0o27
environment = A="%(process_num)d",B='x, y', 9BAD="z"
directory = /srv/%(process_num)d
bogus = 1

[program:s]
command = bash -c "cd /srv && exec ./run --flag"
stopsignal = STOP
stdout_logfile = relative.log

[program:all]
command = /bin/true
`)
	assert.Contains(t, out, "command = /usr/bin/app '--url=http://x/?a=1&b=2' '$HOME' 'two words' /home/u\n")
	assert.Contains(t, out, "# ('--url=http://x/?a=1&b=2' is a plain argument for supervisord")
	assert.Contains(t, out, "# (command: %(ENV_HOME)s expanded as on this machine when imported)")
	assert.Contains(t, out, "numprocs = 3\n")
	assert.Contains(t, out, "# not converted: process_name = w-%(process_num)d — usrsvc names the instances itself: w_00 … w_02")
	assert.Contains(t, out, "stdout = /var/log/w-%(process_num)02d.log\n")
	assert.Contains(t, out, "stderr = /dev/null\n")
	assert.Contains(t, out, "success_seconds = 0.1\n")
	assert.Contains(t, out, "# not converted: startretries = 0 — maxrestarts = 0 means unlimited")
	assert.Contains(t, out, "autorestart = unexpected\n")
	assert.Contains(t, out, "exit_codes = 0, 3\n")
	assert.Contains(t, out, "stop_signal = QUIT\n")
	assert.Contains(t, out, "term_to_kill_seconds = 5\n")
	assert.Contains(t, out, "stop_group = true\n# (killasgroup:")
	assert.Contains(t, out, "umask = 027\n")
	assert.Contains(t, out, "[[Env]]\nA = %(process_num)d\nB = x, y\n")
	assert.Contains(t, out, "# not converted: environment = 9BAD=z — not a variable name")
	assert.Contains(t, out, "# not converted: directory = /srv/%(process_num)d — usrsvc expands %(process_num)d per instance only in")
	assert.Contains(t, out, "# not converted: bogus = 1 — not a supervisord key of [program]")

	assert.Contains(t, out, "[Program:s]\ndefaults = supervisord\nuseshell = true\ncommand = cd /srv && exec ./run --flag\n")
	assert.Contains(t, out, "# not converted: stopsignal = STOP — usrsvc's stop_signal is one of TERM")
	assert.Contains(t, out, "# not converted: stdout_logfile = relative.log — usrsvc needs an absolute path")
	assert.Contains(t, out, "[Program:all_]\n", "all is the command line's word for every program")
	assert.Equal(t, 3, res.Programs)

	_, out = convertText(t, "[program:one]\ncommand=/bin/app --n=%(process_num)d\nnumprocs_start=5\nprocess_name=%(program_name)s\n")
	assert.Contains(t, out, "command = /bin/app --n=5\n", "one instance: process_num is numprocs_start")
	assert.NotContains(t, out, "not converted: process_name")

	res, out = convertText(t, "[program:x]\nautostart=true\n")
	assert.Equal(t, 0, res.Programs)
	assert.Contains(t, out, "# not converted: [program:x] of ")
	assert.Contains(t, out, "it has no command")
}

// Passwords never reach the output, in any layout, nor the warnings.
func TestPasswordsNeverWritten(t *testing.T) {
	t.Parallel()
	res, out := convertText(t, "[inet_http_server]\nport=*:9001\nusername=admin\npassword=s3cr3t-pw\n"+
		"[unix_http_server]\nfile=/home/u/run/sd.sock\npassword=s3cr3t-pw2\nusername=x\n"+
		"[supervisorctl]\npassword={SHA}s3cr3t-pw3\n[program:p]\ncommand=/bin/p\n")
	all := out + strings.Join(res.Warnings, "\n")
	for _, f := range res.Files() {
		all += f.Text
	}
	assert.NotContains(t, all, "s3cr3t")
	assert.Contains(t, out, "[Web]\nlisten = unix:/home/u/run/sd.sock\n", "a socket in the home directory is kept")
	assert.Contains(t, out, "# listen = :9001\n# username = admin\n# password = (the one at ")
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "the [Web] lines are commented")
}

// Without --include, the included files are listed, not read.
func TestIncludeNotFollowed(t *testing.T) {
	t.Parallel()
	opt := testOptions
	opt.Include = false
	res, err := Convert(filepath.Join(testdata, "celery/supervisord.conf"), opt)
	require.NoError(t, err)
	assert.Equal(t, 0, res.Programs)
	out := res.Single()
	assert.Contains(t, out, "# not converted: files = celeryd.conf — not followed (1 files): usrsvc import --include converts them too")
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "add --include")
	assert.Contains(t, out, "# not converted: programs = celery — no [program:celery]")
}

// The -o layout: a main file with config_dir, one file per program and
// group, and the defaults.
func TestFiles(t *testing.T) {
	t.Parallel()
	res, err := Convert(filepath.Join(testdata, "gunicorn-nginx.conf"), testOptions)
	require.NoError(t, err)
	var names []string
	for _, f := range res.Files() {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"usrsvc.cfg", "usrsvc.d/00-supervisord.cfg", "usrsvc.d/gunicorn.cfg", "usrsvc.d/nginx.cfg",
		"usrsvc.d/web.group.cfg"}, names)
	assert.Contains(t, res.Files()[0].Text, "[Main]\npidfile = ~/.local/state/usrsvc/usrsvcd.pid\nconfig_dir = usrsvc.d\n")
}

func TestValueText(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"plain": "plain", "": "", " lead": `" lead"`, "a # b": `"a # b"`, `"quoted"`: `'"quoted"'`,
		"x ; y": `"x ; y"`, "url#frag": "url#frag",
	} {
		got, ok := valueText(v)
		assert.True(t, ok, v)
		assert.Equal(t, want, got, v)
	}
	_, ok := valueText("two\nlines")
	assert.False(t, ok)
}

// FuzzQuote: a command usrsvc import writes splits, in usrsvc, into the
// arguments supervisord would run.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"a b", `a "b c" $HOME > x`, "~/x #y", "FOO=1 cmd", "it's", `a\b`, "(x)", "-", "é ü"} {
		f.Add(s)
	}
	var sp shellcmd.Parser
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Fields(s)
		if len(args) == 0 || strings.ContainsAny(s, "\x00") || !utf8Valid(s) {
			return
		}
		got, err := sp.Args(joinQuoted(args), "/home/u")
		if err != nil && strings.Contains(err.Error(), "shell builtin") {
			return // "cd x": usrsvc refuses it, and import says so (supervisord could not run it either)
		}
		if err != nil || !slices.Equal(got, args) {
			t.Fatalf("args %q written %q read back %q (%v)", args, joinQuoted(args), got, err)
		}
	})
}

// FuzzConvert: any configuration converts without panicking into text
// that reads as usrsvc config files, and no password is copied.
func FuzzConvert(f *testing.F) {
	for _, file := range Testdata {
		data, err := os.ReadFile(filepath.Join(testdata, file))
		require.NoError(f, err)
		f.Add(string(data))
	}
	f.Add("[program:x]\ncommand=%(process_num)s\nnumprocs=2\npassword=topsecret1\n[inet_http_server]\npassword=topsecret2\nport=1\n")
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "s.conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		opt := testOptions
		opt.Include = false
		res, err := Convert(p, opt)
		if err != nil {
			t.Fatal(err)
		}
		out := res.Single()
		if _, err := configobj.Parse("out", []byte(out)); err != nil && utf8Valid(text) && !strings.ContainsRune(text, 0) {
			t.Fatalf("the output does not read as a usrsvc config file: %v\n%s", err, out)
		}
		cfg, err := supervisordconf.Load(p, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range cfg.Sections {
			for _, k := range sec.Keys {
				pw := strings.TrimSpace(k.Value)
				if !strings.Contains(k.Name, "password") || len(pw) < 4 || strings.Count(text, pw) != 1 || !strings.Contains(out, pw) {
					continue
				}
				// It may be in the output for another reason: not when
				// the password is another word.
				if err := os.WriteFile(p, []byte(strings.Replace(text, pw, "\x01", 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				res2, err := Convert(p, opt)
				if err == nil && !strings.Contains(res2.Single(), pw) {
					t.Fatalf("password %q copied:\n%s", pw, out)
				}
			}
		}
	})
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
