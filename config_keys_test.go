package usrsvc

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The keys that control stopping, reloading, the exit policy, the
// environment file, limits, readiness, dependencies, health checks and
// hooks: each read right, each bad value reported at its line.
func TestLoadConfigControlKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envOK := filepath.Join(dir, "ok.env")
	require.NoError(t, os.WriteFile(envOK, []byte("A=1\n"), 0o600))
	envBad := filepath.Join(dir, "bad.env")
	require.NoError(t, os.WriteFile(envBad, []byte("A=1\nnot a line\n"), 0o600))
	envOpen := filepath.Join(dir, "open.env")
	require.NoError(t, os.WriteFile(envOpen, []byte("A=1\n"), 0o600))
	require.NoError(t, os.Chmod(envOpen, 0o666))
	tests := []struct {
		name    string
		lines   []string
		subs    string
		check   func(t *testing.T, p *Program)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, p *Program) {
			assert.Zero(t, p.StopSignal, "0 is SIGTERM")
			assert.False(t, p.StopGroup)
			assert.Zero(t, p.ReloadSignal)
			assert.True(t, p.Autorestart)
			assert.False(t, p.RestartUnexpected)
			assert.Nil(t, p.ExitCodes)
			assert.Nil(t, p.Umask)
			assert.Nil(t, p.Rlimits)
			assert.Equal(t, 1, p.Numprocs)
		}},
		{name: "stop_signal", lines: []string{"stop_signal = quit", "stop_group = yes", "reload_signal = SIGHUP"},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, syscall.SIGQUIT, p.StopSignal)
				assert.True(t, p.StopGroup)
				assert.Equal(t, syscall.SIGHUP, p.ReloadSignal)
			}},
		{name: "stop_signal bad", lines: []string{"stop_signal = STOP"}, wantErr: `stop_signal = "STOP" is not a signal usrsvc sends; use TERM, INT`},
		{name: "autorestart unexpected", lines: []string{"autorestart = Unexpected", "exit_codes = 0, 2"},
			check: func(t *testing.T, p *Program) {
				assert.True(t, p.Autorestart)
				assert.True(t, p.RestartUnexpected)
				assert.Equal(t, []int{0, 2}, p.ExitCodes)
			}},
		{name: "autorestart bad", lines: []string{"autorestart = sometimes"}, wantErr: "neither true, false nor unexpected"},
		{name: "exit_codes bad", lines: []string{"exit_codes = 0, 256"}, wantErr: `"256" is not an exit status from 0 to 255`},
		{name: "umask", lines: []string{"umask = 027"},
			check: func(t *testing.T, p *Program) { require.NotNil(t, p.Umask); assert.EqualValues(t, 0o27, *p.Umask) }},
		{name: "umask bad", lines: []string{"umask = 999"}, wantErr: "is not an octal file mode mask"},
		{name: "limits", lines: []string{"limit_nofile = 4096", "limit_core = unlimited", "limit_nproc = 100:200"},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, syscall.Rlimit{Cur: 4096, Max: 4096}, p.Rlimits[syscall.RLIMIT_NOFILE])
				assert.Equal(t, syscall.Rlimit{Cur: rlimitInfinity, Max: rlimitInfinity}, p.Rlimits[syscall.RLIMIT_CORE])
				assert.Equal(t, syscall.Rlimit{Cur: 100, Max: 200}, p.Rlimits[6])
			}},
		{name: "limit soft above hard", lines: []string{"limit_nofile = 300:200"}, wantErr: "the soft limit 300 is above the hard limit 200"},
		{name: "limit word", lines: []string{"limit_as = lots"}, wantErr: `limit_as = lots: "lots" is not a number or unlimited`},
		{name: "env_file", lines: []string{"env_file = " + envOK},
			check: func(t *testing.T, p *Program) { assert.Equal(t, envOK, p.EnvFile) }},
		{name: "env_file missing", lines: []string{"env_file = " + filepath.Join(dir, "nope.env")}, wantErr: "does not exist: create it"},
		{name: "env_file bad line", lines: []string{"env_file = " + envBad}, wantErr: "env_file " + envBad + ": line 2:"},
		{name: "env_file writable by others", lines: []string{"env_file = " + envOpen}, wantErr: "chmod go-w " + envOpen},
		{name: "ready", lines: []string{"ready = tcp:127.0.0.1:8000", "ready_timeout = 30"},
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, "tcp:127.0.0.1:8000", p.Ready)
				assert.Equal(t, 30*time.Second, p.ReadyTimeout)
			}},
		{name: "ready notify", lines: []string{"ready = notify"}, check: func(t *testing.T, p *Program) { assert.Equal(t, "notify", p.Ready) }},
		{name: "ready log", lines: []string{"ready = log:listening on .*:80"},
			check: func(t *testing.T, p *Program) { assert.Equal(t, "log:listening on .*:80", p.Ready) }},
		{name: "ready no port", lines: []string{"ready = tcp:localhost"}, wantErr: "is not HOST:PORT"},
		{name: "ready bad url", lines: []string{"ready = http:ftp://x/"}, wantErr: "is not an http:// or https:// URL"},
		{name: "ready bad kind", lines: []string{"ready = socket"}, wantErr: "not tcp:HOST:PORT, http:URL, log:REGEX nor notify"},
		{name: "ready bad regexp", lines: []string{"ready = log:(x"}, wantErr: "the regexp does not compile"},
		{name: "health checks", subs: "[[Monitor]]\nhttp_check = http://127.0.0.1:8000/healthz\nhttp_expect = 200,204\n" +
			"http_body_re = ok\ntcp_check = [::1]:5432\nexec_check = pg_isready -q\ncheck_timeout = 2\ncheck_failures = 5\ncheck_action = alert\n",
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, "http://127.0.0.1:8000/healthz", p.HTTPCheck)
				assert.Equal(t, []int{200, 204}, p.HTTPExpect)
				assert.Equal(t, "ok", p.HTTPBodyRE.String())
				assert.Equal(t, "[::1]:5432", p.TCPCheck)
				assert.Equal(t, "pg_isready -q", p.ExecCheck)
				assert.Equal(t, 2*time.Second, p.CheckTimeout)
				assert.Equal(t, 5, p.CheckFailures)
				assert.Equal(t, "alert", p.CheckAction)
			}},
		{name: "http_check bad", subs: "[[Monitor]]\nhttp_check = 127.0.0.1:8000/healthz\n", wantErr: "http_check = 127.0.0.1:8000/healthz:"},
		{name: "tcp_check no port", subs: "[[Monitor]]\ntcp_check = db.local\n", wantErr: `tcp_check = db.local: "db.local" is not HOST:PORT`},
		{name: "exec_check empty", subs: "[[Monitor]]\nexec_check = ''\n", wantErr: "exec_check is empty"},
		{name: "check_timeout too long", subs: "[[Monitor]]\ntcp_check = 127.0.0.1:1\ncheck_timeout = 5\nmonitor_interval = 5\n",
			wantErr: "check_timeout (5s) must be less than monitor_interval (5s)"},
		{name: "check_action bad", subs: "[[Monitor]]\ncheck_action = reboot\n", wantErr: `check_action = "reboot" is neither restart nor alert`},
		{name: "http_expect without http_check", subs: "[[Monitor]]\nhttp_expect = 200\n", wantErr: "http_expect is set without http_check"},
		{name: "hook", subs: "[[Hook]]\nevents = exited, gave-up\ncommand = curl -s https://hooks.example/x\ntimeout = 3\n",
			check: func(t *testing.T, p *Program) {
				assert.Equal(t, []string{"exited", "gave-up"}, p.HookEvents)
				assert.Equal(t, "curl -s https://hooks.example/x", p.HookCommand)
				assert.Equal(t, 3*time.Second, p.HookTimeout)
			}},
		{name: "hook bad event", subs: "[[Hook]]\nevents = exitted\ncommand = true\n", wantErr: `"exitted" is not an event a hook can run on`},
		{name: "hook without command", subs: "[[Hook]]\nevents = exited\n", wantErr: "has events but no command"},
		{name: "hook unknown key", subs: "[[Hook]]\nevents = exited\ncommand = true\nshell = yes\n", wantErr: "unknown key shell in [[Hook]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadMainConfig(t, testMainSection+testProgramSrc(tt.lines, tt.subs))
			if tt.wantErr != "" {
				ps := configProblems(t, err)
				var msgs []string
				for _, p := range ps {
					msgs = append(msgs, p.Msg)
				}
				assert.Contains(t, strings.Join(msgs, "\n"), tt.wantErr)
				for _, p := range ps {
					assert.NotZero(t, p.Line, "every problem has its line: %s", p.Msg)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg.Program("p"))
		})
	}
}

// numprocs makes instances NAME_00 …, each with %(process_num) expanded,
// addressed together by the section's name.
func TestLoadConfigNumprocs(t *testing.T) {
	t.Parallel()
	cfg, err := loadMainConfig(t, testMainSection+"[Program:worker]\nnumprocs = 3\n"+
		"command = /bin/worker --slot %(process_num)d --name %(program_name)s\n"+
		"stdout = /logs/worker-%(process_num)02d.log\n[[Env]]\nSLOT = s%(process_num)d\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"worker_00", "worker_01", "worker_02"}, cfg.names())
	assert.Equal(t, []string{"worker_00", "worker_01", "worker_02"}, cfg.Groups["worker"])
	w1 := cfg.Program("worker_01")
	assert.Equal(t, []string{"/bin/worker", "--slot", "1", "--name", "worker"}, w1.Args)
	assert.Equal(t, "/logs/worker-01.log", w1.Stdout)
	assert.Equal(t, []string{"SLOT=s1"}, w1.Env)
	assert.Equal(t, 3, w1.Numprocs)
	assert.Equal(t, 1, w1.ProcessNum)
	assert.True(t, strings.HasSuffix(w1.Pidfile, "/pids/worker_01.pid"), w1.Pidfile)

	// Wider numbers beyond 100 instances.
	cfg, err = loadMainConfig(t, testMainSection+"[Program:w]\nnumprocs = 101\ncommand = /bin/w %(process_num)d\n")
	require.NoError(t, err)
	assert.NotNil(t, cfg.Program("w_000"))
	assert.NotNil(t, cfg.Program("w_100"))
}

func TestLoadConfigGroupsAndDependencies(t *testing.T) {
	t.Parallel()
	prog := func(name string, extra ...string) string {
		return "[Program:" + name + "]\ncommand = /bin/" + name + "\n" + strings.Join(extra, "\n") + "\n"
	}
	cfg, err := loadMainConfig(t, testMainSection+prog("db")+prog("web", "depends_on = db")+
		prog("worker", "numprocs = 2", "depends_on = db, web")+"[Group:app]\nprograms = web, worker\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"web", "worker_00", "worker_01"}, cfg.Groups["app"])
	deps, unknown := cfg.dependencies(cfg.Program("worker_01"))
	assert.Equal(t, []string{"db", "web"}, deps)
	assert.Empty(t, unknown)

	for name, tc := range map[string]struct{ src, want string }{
		"unknown dependency": {prog("web", "depends_on = dbb") + prog("db"), `depends_on: "dbb" is not a program or a group; did you mean db?`},
		"cycle": {prog("a", "depends_on = b") + prog("b", "depends_on = c") + prog("c", "depends_on = a"),
			"dependency cycle: a -> b -> c -> a"},
		"self":                     {prog("a", "depends_on = a"), "dependency cycle: a -> a"},
		"group of unknown":         {prog("a") + "[Group:g]\nprograms = a, nope\n", `programs: "nope" is not a program`},
		"group named as a program": {prog("a") + "[Group:a]\nprograms = a\n", "[Group:a] has the name of [Program:a]"},
		"group without programs":   {prog("a") + "[Group:g]\n", "[Group:g] is missing the required key programs"},
		"shared pidfile": {prog("a", "pidfile = /tmp/x.pid") + prog("b", "pidfile = /tmp/x.pid"),
			"[Program:b] has the pidfile /tmp/x.pid of [Program:a]"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadMainConfig(t, testMainSection+tc.src)
			var msgs []string
			for _, p := range configProblems(t, err) {
				msgs = append(msgs, p.Msg)
				assert.NotZero(t, p.Line, p.Msg)
			}
			assert.Contains(t, strings.Join(msgs, "\n"), tc.want)
		})
	}
}
