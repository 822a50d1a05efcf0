package usrsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/shellcmd"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// Health checks: the http_check, tcp_check and exec_check keys of
// [[Monitor]]. Each is a Monitor whose Check fails with the reason the
// program does not answer; unlike the other monitors, one failure is not
// a verdict: check_failures failures in a row make the program unhealthy,
// and check_action says what follows (a restart, or an alert only). A
// check never waits longer than check_timeout, so a program stopped with
// SIGSTOP, or one that holds the connection without answering, times out.

// healthMonitor is a health check.
type healthMonitor interface {
	Monitor
	health()
}

// maxHealthBody bounds what an HTTP check reads of a response.
const maxHealthBody = 64 << 10

// healthTransport is shared by the HTTP checks. Each check opens a new
// connection and closes it after the answer, as a client arriving would:
// a check then proves that the program still accepts connections (a
// connection kept alive can be served by a program whose accept loop
// hangs), and nothing is held between checks — no file descriptor, which
// usrsvcd's open-file budget does not count, and no reader goroutines per
// program. Keeping connections alive did not even save the handshakes:
// with more programs than the transport's idle pool, each was closed
// before its next check.
var healthTransport = sync.OnceValue(func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a check goes to the program, not through a proxy
	t.DisableKeepAlives = true
	return t
})

// httpCheck is http_check.
type httpCheck struct {
	url     string
	expect  []int
	bodyRE  interface{ Match([]byte) bool }
	timeout time.Duration
}

func (c *httpCheck) Name() string { return "http_check" }
func (c *httpCheck) health()      {}

func (c *httpCheck) Check(ctx context.Context, _ Process) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("http_check %s: %s", c.url, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("%w: http_check %s: %w", ErrMonitorUnavailable, c.url, err)
	}
	req.Header.Set("User-Agent", "usrsvc-health-check")
	client := &http.Client{Transport: healthTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fail("%s", netReason(ctx, err, c.timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil && ctx.Err() != nil {
		return fail("timeout after %v reading the answer", c.timeout)
	}
	switch {
	case len(c.expect) > 0 && !slices.Contains(c.expect, resp.StatusCode):
		return fail("status %d, not %s", resp.StatusCode, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(c.expect)), ","), "[]"))
	case len(c.expect) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		return fail("status %d", resp.StatusCode)
	case c.bodyRE != nil && !c.bodyRE.Match(body):
		return fail("the answer does not match http_body_re %v", c.bodyRE)
	}
	return nil
}

// tcpCheck is tcp_check.
type tcpCheck struct {
	addr    string
	timeout time.Duration
}

func (c *tcpCheck) Name() string { return "tcp_check" }
func (c *tcpCheck) health()      {}

func (c *tcpCheck) Check(ctx context.Context, _ Process) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("tcp_check %s: %s", c.addr, netReason(ctx, err, c.timeout))
	}
	conn.Close()
	return nil
}

// netReason words a failed connection or request.
func netReason(ctx context.Context, err error, timeout time.Duration) string {
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return fmt.Sprintf("timeout after %v", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	return err.Error()
}

// execCheck is exec_check: the command, run as the account with the
// program's environment and working directory, exits 0 when healthy. At
// the timeout its whole process group is killed.
type execCheck struct {
	command string
	argv    []string
	env     []string
	dir     string
	timeout time.Duration
}

func (c *execCheck) Name() string { return "exec_check" }
func (c *execCheck) health()      {}

func (c *execCheck) Check(ctx context.Context, _ Process) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	path, err := lookPath(c.argv[0], c.env, c.dir)
	if err != nil {
		return fmt.Errorf("exec_check %s: %w", c.command, err)
	}
	cmd := exec.CommandContext(ctx, path, c.argv[1:]...)
	cmd.Args[0] = c.argv[0]
	cmd.Env, cmd.Dir = c.env, c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, n: 4096}
	err = cmd.Run()
	if err == nil {
		return nil
	}
	// Whatever it left in its group goes too.
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("exec_check %s: timeout after %v", c.command, c.timeout)
	}
	reason := err.Error()
	if line, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n"); line != "" {
		reason += ": " + line
	}
	return fmt.Errorf("exec_check %s: %s", c.command, reason)
}

// limitedBuffer keeps the first n bytes written to it.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// healthChecks builds the health checks of a program, with environ the
// environment programs inherit.
func healthChecks(pc *Program, environ []string) []Monitor {
	var mons []Monitor
	timeout := pc.checkTimeout()
	if pc.HTTPCheck != "" {
		c := &httpCheck{url: pc.HTTPCheck, expect: pc.HTTPExpect, timeout: timeout}
		if pc.HTTPBodyRE != nil {
			c.bodyRE = pc.HTTPBodyRE
		}
		mons = append(mons, c)
	}
	if pc.TCPCheck != "" {
		mons = append(mons, &tcpCheck{addr: pc.TCPCheck, timeout: timeout})
	}
	if pc.ExecCheck != "" {
		var sh shellcmd.Parser
		h, _ := home.Dir()
		if argv, err := sh.Args(pc.ExecCheck, h); err == nil && len(argv) > 0 {
			dir := pc.Dir
			if dir == "" {
				dir = h
			}
			mons = append(mons, &execCheck{command: pc.ExecCheck, argv: argv, env: programEnv(pc, environ), dir: dir, timeout: timeout})
		}
	}
	return mons
}

// health is what the loop knows of a program's health.
type health struct {
	failures map[string]int // consecutive failures, by check
	last     string         // the last failure's reason
	lastAt   time.Time
	bad      bool // unhealthy: a check failed check_failures times in a row
}

// state is the health for status: healthy, unhealthy, or unknown (no
// check has run yet).
func (h *health) state(checked bool) string {
	switch {
	case h.bad:
		return "unhealthy"
	case checked:
		return "healthy"
	}
	return "unknown"
}

// onHealth applies the results of a program's health checks: it counts
// consecutive failures, turns the program unhealthy at check_failures (an
// event, an alert, and a restart with check_action = restart) and healthy
// again when every check passes. It reports whether it restarted the
// program.
func (l *loop) onHealth(sv *supervised, results []monitorResult) bool {
	pc := sv.pc
	if sv.health.failures == nil {
		sv.health.failures = map[string]int{}
	}
	need := pc.CheckFailures
	if need <= 0 {
		need = defaultCheckFailures
	}
	anyHealth, allOK, changed := false, true, false
	var worst *monitorResult
	for i, r := range results {
		if !r.health {
			continue
		}
		anyHealth = true
		if sv.checkStats == nil {
			sv.checkStats = map[string]*statedir.CheckStats{}
		}
		if sv.checkStats[r.monitor] == nil {
			sv.checkStats[r.monitor] = &statedir.CheckStats{}
		}
		sv.checkStats[r.monitor].Add(r.took, r.err != nil)
		if !sv.healthChecked {
			sv.healthChecked, changed = true, true // unknown -> healthy or failing
		}
		if r.err == nil {
			if sv.health.failures[r.monitor] > 0 {
				sv.health.failures[r.monitor] = 0
				changed = true
			}
			continue
		}
		allOK = false
		sv.health.failures[r.monitor]++
		n := sv.health.failures[r.monitor]
		sv.health.last = fmt.Sprintf("%s (%d in a row)", r.err, n)
		sv.health.lastAt = l.m.now()
		changed = true
		if n >= need && (worst == nil || n > sv.health.failures[worst.monitor]) {
			worst = &results[i]
		}
	}
	if !anyHealth {
		return false
	}
	switch {
	case worst != nil && !sv.health.bad:
		sv.health.bad = true
		ev := Event{Kind: EventHealthFailed, Program: pc.Name, Config: pc, PID: sv.proc.PID, Monitor: worst.monitor,
			Reason: sv.health.last}
		if pc.CheckAction != "alert" {
			ev.Restarts = sv.restarts + 1
		}
		l.m.emit(ev)
		l.alert(ev)
		l.record(sv)
		if pc.CheckAction != "alert" {
			sv.reason = sv.health.last
			l.startProgram(sv, true, worst.monitor)
			return true
		}
	case allOK && sv.health.bad:
		sv.health.bad = false
		l.m.emit(Event{Kind: EventHealthRecovered, Program: pc.Name, Config: pc, PID: sv.proc.PID})
		l.record(sv)
	case changed || l.m.now().Sub(sv.statsWritten) >= checkStatsEvery:
		l.record(sv)
	}
	return false
}

// checkStatsEvery bounds how stale the checks' counters in the record may
// be (they are written at once when the health changes).
const checkStatsEvery = 30 * time.Second

// resetHealth forgets the health of a program whose process changed.
func (sv *supervised) resetHealth() {
	sv.health = health{}
	sv.healthChecked = false
	sv.checkStats = nil
}
