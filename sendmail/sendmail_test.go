package sendmail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/proc"
)

// fakeSendmail is a sendmail script in a temp dir that records each run in
// a directory of its own: argv (one argument a line) and stdin.
type fakeSendmail struct {
	Path string
	dir  string
}

// newFakeSendmail writes a sendmail script; extra is shell run after the
// message is recorded (e.g. "exit 3").
func newFakeSendmail(t *testing.T, extra string) *fakeSendmail {
	t.Helper()
	dir := t.TempDir()
	f := &fakeSendmail{Path: filepath.Join(dir, "sendmail"), dir: filepath.Join(dir, "mails")}
	require.NoError(t, os.Mkdir(f.dir, 0o700))
	script := fmt.Sprintf(`#!/bin/sh
d=$(mktemp -d %s/mail.XXXXXXXX) || exit 70
for a in "$@"; do printf '%%s\n' "$a"; done > "$d/argv"
cat > "$d/stdin"
%s
`, f.dir, extra)
	require.NoError(t, os.WriteFile(f.Path, []byte(script), 0o700))
	return f
}

type sentMail struct {
	Argv []string
	Raw  string
	Msg  *mail.Message
	Body string
	sent time.Time
}

// mails returns the recorded mails, oldest first.
func (f *fakeSendmail) mails(t *testing.T) []sentMail {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(f.dir, "mail.*"))
	require.NoError(t, err)
	var out []sentMail
	for _, d := range dirs {
		argv, err := os.ReadFile(filepath.Join(d, "argv"))
		require.NoError(t, err)
		raw, err := os.ReadFile(filepath.Join(d, "stdin"))
		require.NoError(t, err)
		fi, err := os.Stat(filepath.Join(d, "stdin"))
		require.NoError(t, err)
		m, err := mail.ReadMessage(strings.NewReader(string(raw)))
		require.NoError(t, err, "message:\n%s", raw)
		body, err := io.ReadAll(m.Body)
		require.NoError(t, err)
		out = append(out, sentMail{Argv: strings.Split(strings.TrimSuffix(string(argv), "\n"), "\n"), Raw: string(raw), Msg: m, Body: string(body), sent: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b sentMail) int { return a.sent.Compare(b.sent) })
	return out
}

// fakeClock is an injectable, settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 8, 22, 14, 34, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func alertConfig(t *testing.T, stderr string) *usrsvc.Program {
	t.Helper()
	return &usrsvc.Program{
		Name:           "web",
		File:           "/home/u/usrsvc.cfg",
		Line:           12,
		Command:        "python3 /home/u/app.py --port 8080",
		Stdout:         stderr,
		Stderr:         stderr,
		MaxRestarts:    5,
		RestartDelay:   2 * time.Second,
		SuccessSeconds: 1500 * time.Millisecond,
		EmailAlerts: []*mail.Address{
			{Name: "Ops Team", Address: "ops@example.com"},
			{Address: "dev@example.org"},
		},
		MonitorAfter: 30 * time.Second, MonitorInterval: 5 * time.Second,
		ActivityFile: "/home/u/app.alive", ActivityFileLimit: 60 * time.Second,
		RSSLimitKB: 30000,
	}
}

func writeLines(t *testing.T, path string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "stderr line %d\n", i)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
}

func TestSendmailAlertMessage(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	stderr := filepath.Join(t.TempDir(), "web.log")
	writeLines(t, stderr, 1, 30)
	clock := newFakeClock()
	a := New(Options{Path: fake.Path, Hostname: "box1.example.net", Now: clock.Now})

	ev := usrsvc.Event{
		Time: clock.Now(), Kind: usrsvc.EventRestarting, Program: "web", Config: alertConfig(t, stderr),
		PID: 1234, OldPID: 1234, Exit: &usrsvc.ExitStatus{Known: true, Exited: true, Status: 3},
		Reason: "exited with status 3 after 2m10s", Restarts: 2,
	}
	require.NoError(t, a.Alert(context.Background(), ev))

	mails := fake.mails(t)
	require.Len(t, mails, 1)
	m := mails[0]
	assert.Equal(t, []string{"-t", "-i"}, m.Argv, "sendmail's argv is exactly -t -i")

	to, err := m.Msg.Header.AddressList("To")
	require.NoError(t, err)
	assert.Equal(t, []*mail.Address{{Name: "Ops Team", Address: "ops@example.com"}, {Address: "dev@example.org"}}, to)
	from, err := m.Msg.Header.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, []*mail.Address{{Address: "usrsvcd@box1.example.net"}}, from)
	assert.Equal(t, "[usrsvcd] web restarted on box1.example.net", m.Msg.Header.Get("Subject"))
	date, err := m.Msg.Header.Date()
	require.NoError(t, err)
	assert.True(t, date.Equal(clock.Now()), "Date %v", date)
	assert.Equal(t, "1.0", m.Msg.Header.Get("MIME-Version"))
	assert.Equal(t, "text/plain; charset=utf-8", m.Msg.Header.Get("Content-Type"))

	for _, want := range []string{
		"Reason:       exited with status 3 after 2m10s",
		"Old pid:      1234",
		"Exit:         exited with status 3",
		"Restarts:     2 of maxrestarts 5",
		"command            = python3 /home/u/app.py --port 8080",
		"success_seconds    = 1.5",
		"maxrestarts        = 5",
		"restart_delay      = 2",
		"activityfile       = /home/u/app.alive",
		"activityfile_limit = 60",
		"rss_limit          = 30000",
		"[Program:web] at /home/u/usrsvc.cfg:12",
		"Last 20 lines of " + stderr + ":",
		"  stderr line 11\n",
		"  stderr line 30\n",
	} {
		assert.Contains(t, m.Body, want)
	}
	assert.NotContains(t, m.Body, "stderr line 10\n", "only the last 20 lines")
	assert.NotContains(t, m.Body, "suppressed")
}

func TestSendmailAlertEventWords(t *testing.T) {
	t.Parallel()
	for kind, subject := range map[usrsvc.EventKind]string{
		usrsvc.EventRestarting:    "[usrsvcd] web restarted on h",
		usrsvc.EventMonitorFailed: "[usrsvcd] web monitor restart on h",
		usrsvc.EventGaveUp:        "[usrsvcd] web gave up on h",
	} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			fake := newFakeSendmail(t, "")
			a := New(Options{Path: fake.Path, Hostname: "h"})
			ev := usrsvc.Event{Kind: kind, Program: "web", Config: alertConfig(t, ""), PID: 7,
				Monitor: "rss_limit", Reason: "private memory 81234 kB above rss_limit 30000 kB",
				Exit: &usrsvc.ExitStatus{Known: true, Signal: 9}}
			require.NoError(t, a.Alert(context.Background(), ev))
			mails := fake.mails(t)
			require.Len(t, mails, 1)
			assert.Equal(t, subject, mails[0].Msg.Header.Get("Subject"))
			assert.Contains(t, mails[0].Body, "private memory 81234 kB above rss_limit 30000 kB")
			assert.Contains(t, mails[0].Body, "killed by signal 9 (SIGKILL)")
			if kind == usrsvc.EventMonitorFailed {
				assert.Contains(t, mails[0].Body, "monitor rss_limit failed")
			}
		})
	}
}

func TestSendmailAlertSkips(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	a := New(Options{Path: fake.Path, Hostname: "h"})
	pc := alertConfig(t, "")
	noMail := *pc
	noMail.EmailAlerts = nil
	for _, ev := range []usrsvc.Event{
		{Kind: usrsvc.EventStarted, Program: "web", Config: pc},
		{Kind: usrsvc.EventExited, Program: "web", Config: pc},
		{Kind: usrsvc.EventMonitorError, Program: "web", Config: pc},
		{Kind: usrsvc.EventStartFailed, Program: "web", Config: pc},
		{Kind: usrsvc.EventReloaded},
		{Kind: usrsvc.EventRestarting, Program: "web"},
		{Kind: usrsvc.EventRestarting, Program: "web", Config: &noMail},
	} {
		assert.NoError(t, a.Alert(context.Background(), ev), "%+v", ev)
	}
	assert.Empty(t, fake.mails(t))
}

func TestSendmailAlertStderrTailEdgeCases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := newFakeSendmail(t, "")
	a := New(Options{Path: fake.Path, Hostname: "h", RateLimit: -1})

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	cases := map[string]string{
		fifo:                          "is not a regular file", // must not block
		empty:                         "is empty",
		filepath.Join(dir, "missing"): "could not be read",
	}
	for path, want := range cases {
		done := make(chan error, 1)
		go func() {
			done <- a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: alertConfig(t, path)})
		}()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("Alert blocked on stderr %s", path)
		}
		mails := fake.mails(t)
		assert.Contains(t, mails[len(mails)-1].Body, want, path)
	}
}

// TestStderrTailLongLine: the tail is bounded (internal/logfile tests the
// bound) and a long line is cut below the mail line limit.
func TestStderrTailLongLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	for i := 1; i <= 100000; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
	fmt.Fprintf(f, "%s\n", strings.Repeat("x", 5000)) // one very long last line
	require.NoError(t, f.Close())

	lines, err := stderrTail(path)
	require.NoError(t, err)
	require.Len(t, lines, 20)
	assert.Equal(t, "line 99982", lines[0])
	assert.Equal(t, "line 100000", lines[18])
	assert.Less(t, len(lines[19]), 1000, "a long line is cut")
	assert.True(t, strings.HasSuffix(lines[19], "[...]"))
}

// TestSendmailAlertNoHeaderInjection: CR/LF in the program name, the host
// name or the program's output never makes a header.
func TestSendmailAlertNoHeaderInjection(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	stderr := filepath.Join(t.TempDir(), "evil.log")
	require.NoError(t, os.WriteFile(stderr, []byte("ok\r\nBcc: victim@example.com\n\nSubject: pwned\nTo: x@example.com\n"), 0o600))
	a := New(Options{Path: fake.Path, Hostname: "box\r\nX-Injected: host"})
	pc := alertConfig(t, stderr)
	pc.Name = "web\r\nBcc: victim@example.com"
	pc.Command = "evil\nBcc: c@example.com"
	ev := usrsvc.Event{Kind: usrsvc.EventRestarting, Program: pc.Name, Config: pc,
		Reason: "crashed\r\nX-Injected: reason\n\nbody"}
	require.NoError(t, a.Alert(context.Background(), ev))

	mails := fake.mails(t)
	require.Len(t, mails, 1)
	m := mails[0]
	head, _, ok := strings.Cut(m.Raw, "\n\n")
	require.True(t, ok)
	assert.NotContains(t, head, "\r")
	var keys []string
	for k := range m.Msg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	assert.Equal(t, []string{"Auto-Submitted", "Content-Transfer-Encoding", "Content-Type", "Date", "From", "Mime-Version", "Subject", "To"}, keys)
	assert.Equal(t, "[usrsvcd] web Bcc: victim@example.com restarted on box X-Injected: host", m.Msg.Header.Get("Subject"))
	from, err := m.Msg.Header.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, "usrsvcd@boxX-Injectedhost", from[0].Address)
	to, err := m.Msg.Header.AddressList("To")
	require.NoError(t, err)
	assert.Len(t, to, 2)
	assert.Contains(t, m.Body, "\n  Bcc: victim@example.com\n", "program output stays in the body, indented")
	assert.Contains(t, m.Body, "Reason:       crashed?\n              X-Injected: reason\n", "a multi-line value is indented")
	assert.NotContains(t, m.Body, "\r")

	// An address that (somehow) holds a control character is refused, and
	// so is a bad From.
	bad := *pc
	bad.EmailAlerts = []*mail.Address{{Name: "x", Address: "a\x01b@example.com"}}
	err = New(Options{Path: fake.Path, Hostname: "h"}).
		Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: &bad})
	assert.ErrorContains(t, err, "control character")
	err = New(Options{Path: fake.Path, Hostname: "h", From: "root@x\r\nBcc: y@z"}).
		Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: pc})
	assert.ErrorContains(t, err, "from address")
	assert.Len(t, fake.mails(t), 1, "nothing more sent")
}

func TestSendmailAlertFrom(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	a := New(Options{Path: fake.Path, Hostname: "h", From: "Supervisor <sup@example.com>"})
	require.NoError(t, a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: alertConfig(t, "")}))
	mails := fake.mails(t)
	require.Len(t, mails, 1)
	from, err := mails[0].Msg.Header.AddressList("From")
	require.NoError(t, err)
	assert.Equal(t, []*mail.Address{{Name: "Supervisor", Address: "sup@example.com"}}, from)
}

func TestSendmailAlertFailure(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, `echo "sendmail: no route to mail host" >&2; exit 75`)
	a := New(Options{Path: fake.Path, Hostname: "h"})
	err := a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: alertConfig(t, "")})
	require.Error(t, err)
	assert.ErrorContains(t, err, "exit status 75")
	assert.ErrorContains(t, err, "no route to mail host")

	a = New(Options{Path: filepath.Join(t.TempDir(), "nope"), Hostname: "h"})
	err = a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: alertConfig(t, "")})
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// sendmailChildAlive reports whether pid exists and is not a zombie.
func sendmailChildAlive(pid int) bool {
	p, err := proc.Default().Stat(pid)
	return err == nil && !p.Zombie()
}

// killPIDsInFile SIGKILLs the pids listed in path that still run comm.
func killPIDsInFile(path, comm string) {
	b, _ := os.ReadFile(path)
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			continue
		}
		if p, err := proc.Default().Stat(pid); err == nil && p.Comm == comm {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestSendmailAlertTimeout: a hanging sendmail is killed with its children
// at the timeout (or when ctx is done first) and Alert returns an error.
func TestSendmailAlertTimeout(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		timeout time.Duration
		ctx     time.Duration
	}{
		// Long enough for the script to reach its sleep on a loaded machine.
		"timeout": {timeout: 3 * time.Second, ctx: time.Minute},
		"ctx":     {timeout: time.Minute, ctx: 3 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pids := filepath.Join(t.TempDir(), "pids")
			fake := newFakeSendmail(t, fmt.Sprintf(`sleep 60 & echo $! >> %s; wait`, pids))
			t.Cleanup(func() { killPIDsInFile(pids, "sleep") })
			a := New(Options{Path: fake.Path, Hostname: "h", Timeout: tc.timeout})
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			defer cancel()

			start := time.Now()
			err := a.Alert(ctx, usrsvc.Event{Kind: usrsvc.EventRestarting, Program: "web", Config: alertConfig(t, "")})
			elapsed := time.Since(start)
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
			assert.Less(t, elapsed, 15*time.Second, "Alert returns promptly")
			assert.GreaterOrEqual(t, elapsed, 2900*time.Millisecond)

			b, err := os.ReadFile(pids)
			require.NoError(t, err, "the script started its sleep")
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			require.NoError(t, err)
			assert.Eventually(t, func() bool { return !sendmailChildAlive(pid) }, 5*time.Second, 10*time.Millisecond,
				"the script's child (pid %d) is killed with it", pid)
		})
	}
}

// TestSendmailAlertRateLimit: a crash loop of 20 alerts sends one mail;
// after the window the next mail reports the suppressed ones.
func TestSendmailAlertRateLimit(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	clock := newFakeClock()
	t0 := clock.Now()
	a := New(Options{Path: fake.Path, Hostname: "h", Now: clock.Now})
	pc := alertConfig(t, "")
	ev := usrsvc.Event{Kind: usrsvc.EventRestarting, Program: "web", Config: pc}

	for i := range 20 {
		ev.Restarts = i + 1
		require.NoError(t, a.Alert(context.Background(), ev))
		clock.Advance(2 * time.Second) // 20 alerts within 40 s
	}
	require.Len(t, fake.mails(t), 1, "one mail for a crash loop within the window")

	// Another kind, or another program, has its own window.
	require.NoError(t, a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventGaveUp, Program: "web", Config: pc}))
	other := *pc
	other.Name = "db"
	require.NoError(t, a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventRestarting, Program: "db", Config: &other}))
	require.Len(t, fake.mails(t), 3)

	clock.Advance(time.Minute)
	ev.Restarts = 21
	require.NoError(t, a.Alert(context.Background(), ev))
	mails := fake.mails(t)
	require.Len(t, mails, 4)
	var last *sentMail
	for i := range mails {
		if strings.Contains(mails[i].Body, "Restarts:     21 ") {
			last = &mails[i]
		}
	}
	require.NotNil(t, last, "the mail after the window")
	assert.Contains(t, last.Body, "19 similar alerts were suppressed since "+t0.Add(2*time.Second).Format(time.RFC3339))

	// The count starts again: the next mail after another window says nothing.
	clock.Advance(2 * time.Minute)
	ev.Restarts = 22
	require.NoError(t, a.Alert(context.Background(), ev))
	mails = fake.mails(t)
	require.Len(t, mails, 5)
	for _, m := range mails {
		if strings.Contains(m.Body, "Restarts:     22 ") {
			assert.NotContains(t, m.Body, "suppressed")
		}
	}
}

func TestSendmailAlertRateLimitConcurrent(t *testing.T) {
	t.Parallel()
	fake := newFakeSendmail(t, "")
	a := New(Options{Path: fake.Path, Hostname: "h"})
	pc := alertConfig(t, "")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			assert.NoError(t, a.Alert(context.Background(), usrsvc.Event{Kind: usrsvc.EventMonitorFailed, Program: "web", Config: pc}))
		})
	}
	wg.Wait()
	assert.Len(t, fake.mails(t), 1)
}

// TestSendmailAlertFailedMailCounted: an alert whose mail failed is reported
// by the next mail for its key.
func TestSendmailAlertFailedMailCounted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flag := filepath.Join(dir, "fail")
	require.NoError(t, os.WriteFile(flag, nil, 0o600))
	fake := newFakeSendmail(t, fmt.Sprintf(`if [ -e %s ]; then rm -rf "$d"; exit 1; fi`, flag))
	clock := newFakeClock()
	a := New(Options{Path: fake.Path, Hostname: "h", Now: clock.Now})
	ev := usrsvc.Event{Kind: usrsvc.EventRestarting, Program: "web", Config: alertConfig(t, "")}
	require.Error(t, a.Alert(context.Background(), ev))
	clock.Advance(time.Second)
	require.NoError(t, a.Alert(context.Background(), ev)) // within the window: counted
	require.NoError(t, os.Remove(flag))
	clock.Advance(time.Minute)
	require.NoError(t, a.Alert(context.Background(), ev))
	mails := fake.mails(t)
	require.Len(t, mails, 1)
	assert.Contains(t, mails[0].Body, "2 similar alerts were suppressed since "+newFakeClock().Now().Format(time.RFC3339))
}

// TestLookSendmail: auto looks in the fixed places, then $PATH. Not
// parallel: it changes sendmailPaths and $PATH.
func TestLookSendmail(t *testing.T) {
	dir := t.TempDir()
	fixed := filepath.Join(dir, "sbin", "sendmail")
	inPath := filepath.Join(dir, "bin", "sendmail")
	for _, p := range []string{fixed, inPath} {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"), 0o700))
	}
	saved := sendmailPaths
	t.Cleanup(func() { sendmailPaths = saved })
	t.Setenv("PATH", filepath.Dir(inPath))

	sendmailPaths = []string{filepath.Join(dir, "none", "sendmail"), fixed}
	for _, auto := range []string{"", "auto"} {
		p, err := lookSendmail(auto)
		require.NoError(t, err)
		assert.Equal(t, fixed, p)
	}
	sendmailPaths = []string{filepath.Join(dir, "none", "sendmail")}
	p, err := lookSendmail("")
	require.NoError(t, err)
	assert.Equal(t, inPath, p)

	p, err = lookSendmail(fixed)
	require.NoError(t, err)
	assert.Equal(t, fixed, p)

	t.Setenv("PATH", filepath.Join(dir, "none"))
	_, err = lookSendmail("")
	assert.ErrorContains(t, err, "sendmail not found")
}
