package usrsvc

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/cfgval"
	"github.com/usrsvc/usrsvc/internal/envfile"
)

// The readers of the keys that control stopping, reloading, the exit
// policy, the environment file, limits, instances, readiness, dependencies,
// health checks and hooks.

// signalNames are the signals stop_signal and reload_signal accept.
var signalNames = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "HUP": syscall.SIGHUP,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH,
}

// parseSignal reads a signal name: TERM or SIGTERM, any case.
func parseSignal(s string) (syscall.Signal, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	sig, ok := signalNames[strings.TrimPrefix(s, "SIG")]
	return sig, ok
}

func (l *configLoader) signalVal(r rawVal) (syscall.Signal, bool) {
	if r.invalid {
		return 0, false
	}
	if sig, ok := parseSignal(r.value); ok {
		return sig, true
	}
	l.addAt(r, "%s = %q is not a signal usrsvc sends; use TERM, INT, QUIT, HUP, KILL, USR1, USR2 or WINCH", r.key, r.value)
	return 0, false
}

// autorestartVal reads autorestart: true, false (and the boolean
// spellings) or unexpected.
func (l *configLoader) autorestartVal(r rawVal, p *Program) {
	if r.invalid {
		return
	}
	if strings.EqualFold(strings.TrimSpace(r.value), "unexpected") {
		p.Autorestart, p.RestartUnexpected = true, true
		return
	}
	if v, ok := cfgval.Bool(r.value); ok {
		p.Autorestart = v
		return
	}
	l.addAt(r, "autorestart = %q is neither true, false nor unexpected (restart only after a signal or an exit status not in exit_codes)", r.value)
}

// intListVal reads a comma-separated list of whole numbers from lo to hi.
func (l *configLoader) intListVal(r rawVal, lo, hi int, what string) ([]int, bool) {
	if r.invalid {
		return nil, false
	}
	var out []int
	for _, f := range strings.Split(r.value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			l.addAt(r, "%s = %q: %q is not %s; write them separated by commas, like %s = %d,%d", r.key, r.value, strings.TrimSpace(f), what, r.key, lo, lo+1)
			return nil, false
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, true
}

// umaskVal reads an octal umask (027, 0027).
func (l *configLoader) umaskVal(r rawVal) (*os.FileMode, bool) {
	if r.invalid {
		return nil, false
	}
	v := strings.TrimSpace(r.value)
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O"), 8, 32)
	if err != nil || n > 0o777 {
		l.addAt(r, "umask = %q is not an octal file mode mask from 000 to 777; write it like umask = 027", r.value)
		return nil, false
	}
	m := os.FileMode(n)
	return &m, true
}

// rlimitKeys are the limit_* keys and their resources.
var rlimitKeys = []struct {
	key      string
	resource int
}{
	{"limit_nofile", syscall.RLIMIT_NOFILE},
	{"limit_nproc", 6}, // RLIMIT_NPROC
	{"limit_core", syscall.RLIMIT_CORE},
	{"limit_as", syscall.RLIMIT_AS},
	{"limit_memlock", 8}, // RLIMIT_MEMLOCK
}

// rlimitName is the key of resource, for messages.
func rlimitName(resource int) string {
	for _, k := range rlimitKeys {
		if k.resource == resource {
			return k.key
		}
	}
	return "limit " + strconv.Itoa(resource)
}

// rlimitInfinity is RLIM_INFINITY.
const rlimitInfinity = math.MaxUint64

// parseRlimit reads N, SOFT:HARD or unlimited (in either place).
func parseRlimit(s string) (syscall.Rlimit, error) {
	one := func(v string) (uint64, error) {
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "unlimited") || strings.EqualFold(v, "infinity") {
			return rlimitInfinity, nil
		}
		return strconv.ParseUint(v, 10, 64)
	}
	soft, hard, both := strings.Cut(s, ":")
	cur, err := one(soft)
	if err != nil {
		return syscall.Rlimit{}, fmt.Errorf("%q is not a number or unlimited", strings.TrimSpace(soft))
	}
	max := cur
	if both {
		if max, err = one(hard); err != nil {
			return syscall.Rlimit{}, fmt.Errorf("%q is not a number or unlimited", strings.TrimSpace(hard))
		}
	}
	if cur > max {
		return syscall.Rlimit{}, fmt.Errorf("the soft limit %s is above the hard limit %s", strings.TrimSpace(soft), strings.TrimSpace(hard))
	}
	return syscall.Rlimit{Cur: cur, Max: max}, nil
}

// readyVal reads ready: tcp:HOST:PORT, http:URL, log:REGEX or notify.
func (l *configLoader) readyVal(r rawVal) (string, bool) {
	if r.invalid {
		return "", false
	}
	v := strings.TrimSpace(r.value)
	if err := checkReady(v); err != nil {
		l.addAt(r, "ready = %s: %v", v, err)
		return "", false
	}
	return v, true
}

// checkReady checks a ready value.
func checkReady(v string) error {
	kind, arg, _ := strings.Cut(v, ":")
	switch strings.ToLower(kind) {
	case "notify":
		if arg != "" {
			return fmt.Errorf("notify takes nothing after it (the program sends READY=1 to $NOTIFY_SOCKET)")
		}
	case "tcp":
		return checkHostPort(arg)
	case "http":
		return checkHTTPURL(arg)
	case "log":
		if arg == "" {
			return fmt.Errorf("log: needs a regexp matched against each new line of the program's output, like log:listening on")
		}
		if _, err := compileProcTitleRE(arg); err != nil {
			return fmt.Errorf("the regexp does not compile: %w", err)
		}
	default:
		return fmt.Errorf("not tcp:HOST:PORT, http:URL, log:REGEX nor notify")
	}
	return nil
}

// checkHostPort checks HOST:PORT with a port.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT (%v); write it like 127.0.0.1:8000", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%q has no port from 1 to 65535", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; write it like 127.0.0.1:%s", s, port)
	}
	return nil
}

// checkHTTPURL checks an http or https URL with a host.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host; write it like http://127.0.0.1:8000/healthz", s)
	}
	return nil
}

// namesVal reads a comma-separated list of program or group names.
func (l *configLoader) namesVal(r rawVal) ([]string, bool) {
	if r.invalid {
		return nil, false
	}
	names := cfgval.List(r.value)
	for _, n := range names {
		if !validProgramName(n) {
			l.addAt(r, "%s = %s: %q is not a program or group name (letters, digits, '_', '.' and '-')", r.key, r.value, n)
			return nil, false
		}
	}
	return names, true
}

// hookEvents are the events a [[Hook]] may name.
var hookEvents = []string{"started", "stopped", "exited", "restarted", "gave-up", "monitor-restart",
	"health-failed", "health-recovered", "start-failed"}

// resolveChecks reads the health-check keys of [[Monitor]].
func (l *configLoader) resolveChecks(p *Program, get func(string) (rawVal, bool)) {
	if r, ok := get("http_check"); ok && !r.invalid {
		v := strings.TrimSpace(r.value)
		if err := checkHTTPURL(v); err != nil {
			l.addAt(r, "http_check = %s: %v", v, err)
		} else {
			p.HTTPCheck = v
		}
	}
	if r, ok := get("http_expect"); ok {
		p.HTTPExpect, _ = l.intListVal(r, 100, 599, "an HTTP status code")
	}
	if r, ok := get("http_body_re"); ok && !r.invalid {
		if re, err := compileProcTitleRE(r.value); err != nil {
			l.addAt(r, "http_body_re does not compile: %v (Go RE2 syntax)", err)
		} else {
			p.HTTPBodyRE = re
		}
	}
	if r, ok := get("tcp_check"); ok && !r.invalid {
		v := strings.TrimSpace(r.value)
		if err := checkHostPort(v); err != nil {
			l.addAt(r, "tcp_check = %s: %v", v, err)
		} else {
			p.TCPCheck = v
		}
	}
	if r, ok := get("exec_check"); ok && !r.invalid {
		if strings.TrimSpace(r.value) == "" {
			l.addAt(r, "exec_check is empty: set it to a command that exits 0 when the program is healthy")
		} else if _, err := l.sh.Args(r.value, l.home); err != nil {
			l.addAt(r, "exec_check: %s", err)
		} else {
			p.ExecCheck = r.value
		}
	}
	if r, ok := get("check_timeout"); ok {
		p.CheckTimeout, _ = l.secondsVal(r, true)
	}
	if r, ok := get("check_failures"); ok {
		if n, ok := l.intVal(r, "a count ≥ 1"); ok {
			if n < 1 {
				l.addAt(r, "check_failures = 0: set it to 1 or more (how many checks in a row must fail)")
			} else {
				p.CheckFailures = int(n)
			}
		}
	}
	if r, ok := get("check_action"); ok && !r.invalid {
		switch v := strings.ToLower(strings.TrimSpace(r.value)); v {
		case "restart", "alert":
			p.CheckAction = v
		default:
			l.addAt(r, "check_action = %q is neither restart nor alert", r.value)
		}
	}
	if r, ok := get("check_timeout"); ok && p.CheckTimeout >= p.MonitorInterval && p.CheckTimeout > 0 {
		l.addAt(r, "check_timeout (%v) must be less than monitor_interval (%v): a check ends before the next one starts",
			p.CheckTimeout, p.MonitorInterval)
	}
	if p.HTTPExpect != nil && p.HTTPCheck == "" || p.HTTPBodyRE != nil && p.HTTPCheck == "" {
		if r, ok := get("http_expect"); ok {
			l.addAt(r, "http_expect is set without http_check: add http_check = URL")
		} else if r, ok := get("http_body_re"); ok {
			l.addAt(r, "http_body_re is set without http_check: add http_check = URL")
		}
	}
}

// resolveHook reads the [[Hook]] subsection.
func (l *configLoader) resolveHook(p *Program, get func(string) (rawVal, bool), header string) {
	evR, hasEvents := get("events")
	cmdR, hasCmd := get("command")
	if hasEvents && !evR.invalid {
		for _, e := range cfgval.List(strings.ToLower(evR.value)) {
			if !slices.Contains(hookEvents, e) {
				l.addAt(evR, "events: %q is not an event a hook can run on (%s)%s", e, strings.Join(hookEvents, ", "), cfgDidYouMean(e, hookEvents))
				continue
			}
			p.HookEvents = append(p.HookEvents, e)
		}
	}
	if hasCmd && !cmdR.invalid {
		if strings.TrimSpace(cmdR.value) == "" {
			l.addAt(cmdR, "the [[Hook]] command is empty")
		} else if _, err := l.sh.Args(cmdR.value, l.home); err != nil {
			l.addAt(cmdR, "[[Hook]] command: %s", err)
		} else {
			p.HookCommand = cmdR.value
		}
	}
	if r, ok := get("timeout"); ok {
		p.HookTimeout, _ = l.secondsVal(r, true)
	}
	switch {
	case hasEvents && !hasCmd:
		l.addAt(evR, "the [[Hook]] of %s has events but no command: add command = COMMAND", header)
	case hasCmd && !hasEvents:
		l.addAt(cmdR, "the [[Hook]] of %s has a command but no events: add events = exited, gave-up, ...", header)
	}
}

// defaultDurations are the zero-value defaults of the newer keys.
const (
	defaultCheckTimeout  = 5 * time.Second
	defaultCheckFailures = 3
	defaultReadyTimeout  = 60 * time.Second
	defaultHookTimeout   = 10 * time.Second
)

// checkEnvFile reports, at the env_file key r, an environment file that
// cannot be used: missing, unreadable, writable by others, or a bad line
// (with the file and line of the environment file).
func (l *configLoader) checkEnvFile(r rawVal, path string) {
	_, err := envfile.Read(path)
	var le *envfile.LineError
	var ue *envfile.UnsafeError
	switch {
	case err == nil:
	case l.resource("reading env_file "+path, err):
	case errors.As(err, &le):
		l.addAt(r, "env_file %s: line %d: %s", path, le.Line, le.Msg)
	case errors.As(err, &ue):
		l.addAt(r, "env_file %v", err)
	case errors.Is(err, os.ErrNotExist):
		l.addAt(r, "env_file %s does not exist: create it (KEY=VALUE lines) or remove the key", path)
	default:
		l.addAt(r, "env_file %s cannot be read: %v", path, err)
	}
}

// checkControls checks the stop, reload, exit, limit, readiness,
// dependency, health-check and hook settings of a program built in Go (a
// configuration file's are checked as they are read); it reports through
// add and returns nothing of its own.
func (c *Config) checkControls(pc *Program, add func(format string, args ...any)) []problem {
	for _, s := range []struct {
		what string
		sig  syscall.Signal
	}{{"StopSignal (stop_signal)", pc.StopSignal}, {"ReloadSignal (reload_signal)", pc.ReloadSignal}} {
		if s.sig < 0 || s.sig > 64 {
			add("%s %d is not a signal", s.what, s.sig)
		}
	}
	for _, code := range pc.ExitCodes {
		if code < 0 || code > 255 {
			add("ExitCodes (exit_codes) holds %d: exit statuses are 0 to 255", code)
		}
	}
	if pc.Umask != nil && *pc.Umask > 0o777 {
		add("Umask (umask) %o is not a mask from 000 to 777", *pc.Umask)
	}
	for res, lim := range pc.Rlimits {
		if lim.Cur > lim.Max {
			add("Rlimits: the soft %s %d is above its hard limit %d", rlimitName(res), lim.Cur, lim.Max)
		}
	}
	if pc.Numprocs < 0 || pc.ProcessNum < 0 {
		add("Numprocs and ProcessNum must not be negative")
	}
	if pc.Ready != "" {
		if err := checkReady(pc.Ready); err != nil {
			add("Ready (ready) %q: %v", pc.Ready, err)
		}
	}
	_, unknown := c.dependencies(pc)
	for _, n := range unknown {
		add("DependsOn (depends_on) names %q, which is not a program or a group of the configuration", n)
	}
	if pc.HTTPCheck != "" {
		if err := checkHTTPURL(pc.HTTPCheck); err != nil {
			add("HTTPCheck (http_check): %v", err)
		}
	}
	if pc.TCPCheck != "" {
		if err := checkHostPort(pc.TCPCheck); err != nil {
			add("TCPCheck (tcp_check): %v", err)
		}
	}
	for _, code := range pc.HTTPExpect {
		if code < 100 || code > 599 {
			add("HTTPExpect (http_expect) holds %d: HTTP status codes are 100 to 599", code)
		}
	}
	if pc.CheckFailures < 0 {
		add("CheckFailures (check_failures) is negative")
	}
	if pc.CheckAction != "" && pc.CheckAction != "restart" && pc.CheckAction != "alert" {
		add("CheckAction (check_action) %q is neither restart nor alert", pc.CheckAction)
	}
	if pc.hasChecks() && pc.CheckTimeout >= pc.MonitorInterval && pc.MonitorInterval > 0 {
		add("CheckTimeout (check_timeout, %v) must be less than MonitorInterval (monitor_interval, %v)", pc.checkTimeout(), pc.MonitorInterval)
	}
	for _, e := range pc.HookEvents {
		if !slices.Contains(hookEvents, e) {
			add("HookEvents holds %q, which is not one of %s", e, strings.Join(hookEvents, ", "))
		}
	}
	if (len(pc.HookEvents) > 0) != (strings.TrimSpace(pc.HookCommand) != "") {
		add("a hook needs both HookEvents and HookCommand")
	}
	return nil
}

// hasChecks reports whether the program has a health check.
func (pc *Program) hasChecks() bool {
	return pc.HTTPCheck != "" || pc.TCPCheck != "" || pc.ExecCheck != ""
}

// checkTimeout is CheckTimeout with its default: 5 s, or 4/5 of
// monitor_interval when that is 5 s or less (a check ends before the next).
func (pc *Program) checkTimeout() time.Duration {
	if pc.CheckTimeout > 0 {
		return pc.CheckTimeout
	}
	if pc.MonitorInterval > 0 && defaultCheckTimeout >= pc.MonitorInterval {
		return pc.MonitorInterval * 4 / 5
	}
	return defaultCheckTimeout
}
