package usrsvc

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests of what ships besides the code: examples/ and systemd/.

// copyTree copies the regular files and directories of src into dst, with
// modes 0644 and 0755 whatever the checkout's umask (the loader refuses
// config files writable by group or others).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				return err
			}
			return os.Chmod(target, 0o644)
		}
		return nil // symlinks and others: not part of the examples
	})
	require.NoError(t, err)
}

func TestExamplesPassCheckconfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "examples")
	copyTree(t, "examples", dir)

	cfg, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
	require.NoError(t, err, "examples/ must pass usrsvcd checkconfig")

	names := make([]string, 0, len(cfg.Programs))
	byName := map[string]*Program{}
	for _, p := range cfg.Programs {
		names = append(names, p.Name)
		byName[p.Name] = p
	}
	sort.Strings(names)
	require.Equal(t, []string{"celery_00", "celery_01", "celery_02", "celery_03", "consumer", "db",
		"nightly-report", "sleepd", "usrsvcweb", "web", "web-app", "worker"}, names)

	// Every file of examples/ was loaded: the main file and each cfg/*.cfg.
	cfgFiles, err := filepath.Glob(filepath.Join(dir, "cfg", "*.cfg"))
	require.NoError(t, err)
	require.Len(t, cfg.Files, 1+len(cfgFiles), "loaded files: %v", cfg.Files)

	// "~/" paths were expanded: nothing relative or unexpanded is left.
	for _, p := range cfg.Programs {
		for _, path := range []string{p.Pidfile, p.Stdout, p.Stderr} {
			require.True(t, filepath.IsAbs(path), "%s: %q is not absolute", p.Name, path)
			require.NotContains(t, path, "~", "%s: %q", p.Name, path)
		}
	}

	// What each example is there to show.
	require.Equal(t, "web", byName["web"].Defaults)
	require.NotEmpty(t, byName["web"].EmailAlerts, "web inherits email_alerts from [DefaultSettings:web]")
	require.Positive(t, byName["web"].RSSLimitKB)
	require.NotNil(t, byName["sleepd"].ProcTitleRE, "a fork-and-exit daemon needs its own proctitle_re")
	require.True(t, byName["worker"].UseShell)
	require.NotNil(t, byName["worker"].ProcTitleRE, "a pipeline needs an explicit proctitle_re")
	require.NotEmpty(t, byName["consumer"].ActivityFile)
	require.Positive(t, byName["consumer"].ActivityFileLimit)
	require.False(t, byName["consumer"].InheritEnv)
	require.False(t, byName["nightly-report"].Enabled)

	// The stack: readiness, dependencies, a health check, a hook,
	// instances and a group.
	require.Equal(t, "tcp:127.0.0.1:6390", byName["db"].Ready)
	require.Equal(t, []string{"db"}, byName["web-app"].DependsOn)
	require.Equal(t, "http://127.0.0.1:8000/health", byName["web-app"].HTTPCheck)
	require.NotEmpty(t, byName["web-app"].HookCommand)
	require.True(t, byName["web-app"].StopGroup)
	require.Contains(t, byName["celery_02"].Args, "celery2@%h", "%(program_name)s%(process_num)d expanded per instance")
	require.ElementsMatch(t, []string{"db", "web-app", "celery_00", "celery_01", "celery_02", "celery_03"}, cfg.Groups["app"])

	// [[Env]] of a DefaultSettings merges with the program's own.
	env := map[string]string{}
	for _, e := range byName["worker"].Env {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	require.Equal(t, "production", env["APP_ENV"], "from [DefaultSettings:batch]")
	require.Equal(t, "default", env["WORKER_QUEUE"], "from the program's [[Env]]")
}

func TestExampleProctitles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "examples")
	copyTree(t, "examples", dir)
	cfg, err := LoadConfig(filepath.Join(dir, "usrsvc.cfg"))
	require.NoError(t, err)
	byName := map[string]*Program{}
	for _, p := range cfg.Programs {
		byName[p.Name] = p
	}
	// The titles the examples' processes have, and near misses.
	for _, c := range []struct {
		program, title string
		match          bool
	}{
		{"web", "python3 -m http.server 8089 --bind 127.0.0.1", true},
		{"web", "/usr/bin/python3 -m http.server 8089 --bind 127.0.0.1", true},
		{"web", "python3 -m http.server 8090 --bind 127.0.0.1", false},
		{"sleepd", "sleep 100000", true},
		{"sleepd", "setsid -f sleep 100000", false},
		{"sleepd", "sleep 1000000", false},
		{"worker", "python3 -u /home/alice/app/worker.py", true},
		{"worker", "logger -t worker", false},
		{"worker", "/bin/bash -c exec python3 -u ~/app/worker.py 2>&1 | logger -t worker", false},
	} {
		got := matchTitle(byName[c.program], c.title)
		require.Equal(t, c.match, got, "%s: proctitle_re %s on %q", c.program, titleRE(byName[c.program]), c.title)
	}
}

// fakeBinDir returns a directory with executable usrsvc and usrsvcd.
func fakeBinDir(t *testing.T) string {
	dir := t.TempDir()
	for _, b := range []string{"usrsvc", "usrsvcd", "usrsvcweb"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\nexit 0\n"), 0o755))
	}
	return dir
}

// runInstall runs systemd/install.sh from another directory (it must find
// the repository from its own path) and returns its combined output.
func runInstall(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	script, err := filepath.Abs(filepath.Join("systemd", "install.sh"))
	require.NoError(t, err)
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func TestInstallDryRun(t *testing.T) {
	const prefix = "/opt/usrsvc-test"
	if _, err := os.Lstat(prefix); err == nil {
		t.Skipf("%s exists already: cannot check that a dry run leaves it alone", prefix)
	}
	bin := fakeBinDir(t)
	out, err := runInstall(t, "--dry-run", "--prefix", prefix, "--bin-dir", bin)
	require.NoError(t, err, "output:\n%s", out)
	bin, err = filepath.EvalSymlinks(bin) // the script prints the physical path
	require.NoError(t, err)

	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	has := func(parts ...string) bool {
		for _, l := range lines {
			if !strings.HasPrefix(l, "would: ") {
				continue
			}
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return true
			}
		}
		return false
	}
	for _, b := range []string{"usrsvc", "usrsvcd", "usrsvcweb"} {
		require.True(t, has("install ", filepath.Join(bin, b)+" ", prefix+"/bin/"+b),
			"no line installing %s into %s/bin:\n%s", b, prefix, out)
	}
	require.True(t, has("/etc/systemd/system/usrsvcd@.service"), "template unit not installed:\n%s", out)
	require.True(t, has("/etc/systemd/user/usrsvcd.service"), "user unit not installed:\n%s", out)
	for _, unit := range []string{"/etc/systemd/system/usrsvcd@.service", "/etc/systemd/user/usrsvcd.service"} {
		require.True(t, has(unit, "ExecStart="+prefix+"/bin/usrsvcd --foreground start"),
			"ExecStart of %s not rewritten:\n%s", unit, out)
		require.True(t, has(unit, "ExecReload="+prefix+"/bin/usrsvcd reread"),
			"ExecReload of %s not rewritten:\n%s", unit, out)
	}
	for _, unit := range []string{"/etc/systemd/system/usrsvcweb@.service", "/etc/systemd/user/usrsvcweb.service"} {
		require.True(t, has(unit, "ExecStart="+prefix+"/bin/usrsvcweb"), "ExecStart of %s not rewritten:\n%s", unit, out)
	}
	require.NotContains(t, out, "ExecStart=/usr/local/bin", "the shipped path must be rewritten")
	require.Contains(t, out, "systemctl enable --now usrsvcd@")
	require.Contains(t, out, "loginctl enable-linger")

	_, err = os.Lstat(prefix)
	require.ErrorIs(t, err, fs.ErrNotExist, "a dry run must create nothing")
}

func TestInstallDryRunBuilds(t *testing.T) {
	out, err := runInstall(t, "--dry-run", "--prefix", "/opt/usrsvc-test")
	if err != nil && strings.Contains(out, "go not found") {
		t.Skip("go not in PATH")
	}
	require.NoError(t, err, "output:\n%s", out)
	require.Contains(t, out, "would: (cd ")
	require.Regexp(t, `(?m)^would: .*go build -o \S+/usrsvcd \./cmd/usrsvcd\)$`, out)
	require.Regexp(t, `(?m)^would: .*go build -o \S+/usrsvc \./cmd/usrsvc\)$`, out)
}

// TestInstallIntoTempDirs installs for real, into temporary directories,
// and checks the rewritten units.
func TestInstallIntoTempDirs(t *testing.T) {
	root := t.TempDir()
	prefix, sys, user := filepath.Join(root, "pfx"), filepath.Join(root, "system"), filepath.Join(root, "user")
	out, err := runInstall(t, "--prefix", prefix, "--bin-dir", fakeBinDir(t),
		"--unit-dir", sys, "--user-unit-dir", user, "--no-daemon-reload")
	require.NoError(t, err, "output:\n%s", out)

	for _, b := range []string{"usrsvc", "usrsvcd", "usrsvcweb"} {
		fi, err := os.Stat(filepath.Join(prefix, "bin", b))
		require.NoError(t, err)
		require.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
	}
	for _, unit := range []string{filepath.Join(sys, "usrsvcd@.service"), filepath.Join(user, "usrsvcd.service")} {
		fi, err := os.Stat(unit)
		require.NoError(t, err)
		require.Equal(t, fs.FileMode(0o644), fi.Mode().Perm())
		data, err := os.ReadFile(unit)
		require.NoError(t, err)
		text := string(data)
		require.Contains(t, text, "\nExecStart="+prefix+"/bin/usrsvcd --foreground start\n")
		require.Contains(t, text, "\nExecReload="+prefix+"/bin/usrsvcd reread\n")
		require.NotRegexp(t, `(?m)^Exec.*/usr/local/bin`, text)
		// Everything but the Exec lines is as shipped.
		shipped, err := os.ReadFile(filepath.Join("systemd", filepath.Base(unit)))
		require.NoError(t, err)
		require.Equal(t, nonExec(string(shipped)), nonExec(text))
	}
	for _, unit := range []string{filepath.Join(sys, "usrsvcweb@.service"), filepath.Join(user, "usrsvcweb.service")} {
		data, err := os.ReadFile(unit)
		require.NoError(t, err)
		require.Contains(t, string(data), "\nExecStart="+prefix+"/bin/usrsvcweb\n")
	}
}

func nonExec(unit string) string {
	return regexp.MustCompile(`(?m)^Exec.*$`).ReplaceAllString(unit, "")
}

// unitDirectives returns the directives of a unit file (comments dropped),
// key → values.
func unitDirectives(t *testing.T, path string) map[string][]string {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	d := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: not a directive: %q", path, line)
		d[strings.TrimSpace(k)] = append(d[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return d
}

// TestSystemdWebUnits: usrsvcweb's units keep what it starts (KillMode)
// and sandbox nothing, like usrsvcd's.
func TestSystemdWebUnits(t *testing.T) {
	for _, c := range []struct {
		file     string
		template bool
	}{{"usrsvcweb@.service", true}, {"usrsvcweb.service", false}} {
		d := unitDirectives(t, filepath.Join("systemd", c.file))
		require.Equal(t, []string{"notify"}, d["Type"], c.file)
		require.Equal(t, []string{"process"}, d["KillMode"], "%s: stopping usrsvcweb must not kill what it started", c.file)
		require.Equal(t, []string{"/usr/local/bin/usrsvcweb"}, d["ExecStart"], c.file)
		require.Equal(t, []string{"130"}, d["RestartPreventExitStatus"], c.file)
		if c.template {
			require.Equal(t, []string{"%i"}, d["User"])
		} else {
			require.Empty(t, d["User"])
		}
		for key := range d {
			require.False(t, strings.HasPrefix(key, "Protect") || strings.HasPrefix(key, "Private") || key == "NoNewPrivileges",
				"%s: sandboxing directive %s= would apply to the programs started through usrsvcweb", c.file, key)
		}
	}
}

func TestSystemdUnits(t *testing.T) {
	// Directives that sandbox the process: they would be inherited by every
	// program usrsvcd launches (and not by those started from a shell).
	sandboxing := regexp.MustCompile(`^(Protect\w+|Private\w+|NoNewPrivileges|Restrict\w+|SystemCallFilter|` +
		`SystemCallArchitectures|CapabilityBoundingSet|AmbientCapabilities|MemoryDenyWriteExecute|LockPersonality|` +
		`ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|` +
		`RootDirectory|RootImage|DynamicUser|SecureBits|IPAddressDeny|DevicePolicy|DeviceAllow)$`)

	for _, c := range []struct {
		file     string
		template bool
	}{
		{"usrsvcd@.service", true},
		{"usrsvcd.service", false},
	} {
		t.Run(c.file, func(t *testing.T) {
			d := unitDirectives(t, filepath.Join("systemd", c.file))
			one := func(key string) string {
				require.Len(t, d[key], 1, "%s: want exactly one %s=", c.file, key)
				return d[key][0]
			}
			require.Equal(t, "notify", one("Type"))
			require.Equal(t, "main", one("NotifyAccess"))
			require.Equal(t, "process", one("KillMode"), "stopping the unit must never kill the programs")
			require.Equal(t, "/usr/local/bin/usrsvcd --foreground start", one("ExecStart"))
			require.Equal(t, "/usr/local/bin/usrsvcd reread", one("ExecReload"))
			require.Equal(t, "on-failure", one("Restart"))
			require.Equal(t, "2s", one("RestartSec"))
			require.Equal(t, "~", one("WorkingDirectory"))
			if c.template {
				require.Equal(t, "%i", one("User"))
				require.Equal(t, "multi-user.target", one("WantedBy"))
			} else {
				require.Empty(t, d["User"], "a user unit runs as its user")
				require.Equal(t, "default.target", one("WantedBy"))
			}
			require.Empty(t, d["ExecStop"], "systemd's SIGTERM to the main process is the stop")
			for key := range d {
				require.False(t, sandboxing.MatchString(key), "%s: sandboxing directive %s= would apply to the programs", c.file, key)
			}
		})
	}
}
