// Package sendmail is a usrsvc [usrsvc.Alerter] that mails alerts with
// `sendmail -t -i`: one mail when usrsvcd restarts a program that stopped,
// when a monitor restarts it, and when it gives up at maxrestarts, to the
// program's email_alerts. usrsvcd uses it; an embedder may use it, or any
// other Alerter.
package sendmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/logfile"
)

// Defaults of [Options].
const (
	DefaultTimeout   = 30 * time.Second
	DefaultRateLimit = time.Minute
)

// Bounds of the stderr tail quoted in an alert.
const (
	alertTailLines = 20
	alertTailBytes = 16 << 10
	alertLineBytes = 900 // below the 998-octet line limit of RFC 5322
)

// sendmailPaths are where "auto" looks for sendmail before $PATH.
var sendmailPaths = []string{"/usr/sbin/sendmail", "/usr/bin/sendmail"}

// Options configures an [Alerter]. The zero value means every
// documented default.
type Options struct {
	// Path is the sendmail program. "" (or "auto") looks for
	// /usr/sbin/sendmail, /usr/bin/sendmail, then "sendmail" in $PATH, at
	// each alert.
	Path string
	// From is the From address; default usrsvcd@<Hostname>. It must parse
	// with net/mail.ParseAddress.
	From string
	// Hostname names this machine in the Subject and the default From;
	// default os.Hostname(), read at each alert.
	Hostname string
	// Timeout bounds one sendmail run (default 30 s): at the timeout, or when
	// Alert's ctx is done if that is earlier, sendmail's whole process group
	// is killed.
	Timeout time.Duration
	// RateLimit is the minimum time between two mails for the same program
	// and event kind (default 1 minute; negative: no limit). Alerts within
	// the window are counted, not sent; the next mail reports the count.
	RateLimit time.Duration
	// Logger receives a line per mail sent or suppressed; nil discards.
	Logger *slog.Logger
	// Now is the clock of the rate limit and the Date header; nil is
	// time.Now.
	Now func() time.Time
}

// Alerter is a [usrsvc.Alerter] that mails a program's email_alerts with
// `sendmail -t -i`. It alerts on [usrsvc.EventRestarting],
// [usrsvc.EventMonitorFailed], [usrsvc.EventHealthFailed] and [usrsvc.EventGaveUp] of programs that
// have EmailAlerts, and ignores every other event. A mail's body says what
// happened, the pids, the exit status when known, the configuration values
// involved and the last lines of the program's stderr file.
//
// Headers are built only from the validated configuration (addresses), the
// program name and the hostname, with any control character removed; the
// program's own output appears only in the body, after the blank line that
// ends the headers.
//
// An Alerter is safe for concurrent use.
type Alerter struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	rates map[rateKey]*rateState
}

type rateKey struct {
	program string
	kind    usrsvc.EventKind
}

type rateState struct {
	last       time.Time // when the last mail was sent (or attempted)
	suppressed int       // alerts not sent since then
	since      time.Time // the first of them
}

// New returns an Alerter with opts, defaults filled in. It does no I/O:
// sendmail and the hostname are looked up at each alert.
func New(opts Options) *Alerter {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Alerter{opts: opts, log: log, rates: map[rateKey]*rateState{}}
}

// alertWords are the Subject's words for the kinds that send mail.
var alertWords = map[usrsvc.EventKind]string{
	usrsvc.EventRestarting:    "restarted",
	usrsvc.EventMonitorFailed: "monitor restart",
	usrsvc.EventGaveUp:        "gave up",
	usrsvc.EventHealthFailed:  "unhealthy",
}

// Alert mails ev to its program's email_alerts when ev is a restart, a
// monitor restart or a give-up, unless a mail for the same program and kind
// went out less than RateLimit ago (then it is only counted). It returns nil
// when nothing is to be sent, and an error when sendmail cannot be found,
// fails, or does not finish within the timeout.
func (a *Alerter) Alert(ctx context.Context, ev usrsvc.Event) error {
	word, ok := alertWords[ev.Kind]
	if !ok || ev.Config == nil || len(ev.Config.EmailAlerts) == 0 {
		return nil
	}
	program := ev.Program
	if program == "" {
		program = ev.Config.Name
	}
	key := rateKey{program, ev.Kind}
	now := a.opts.Now()

	a.mu.Lock()
	st := a.rates[key]
	if st == nil {
		st = &rateState{}
		a.rates[key] = st
	}
	// Within the window of the last mail? (A clock that went back is not.)
	if d := now.Sub(st.last); a.opts.RateLimit > 0 && !st.last.IsZero() && d >= 0 && d < a.opts.RateLimit {
		if st.suppressed == 0 {
			st.since = now
		}
		st.suppressed++
		n := st.suppressed
		a.mu.Unlock()
		a.log.Info("alert mail suppressed by the rate limit", "program", program, "event", string(ev.Kind),
			"suppressed", n, "rate_limit", a.opts.RateLimit)
		return nil
	}
	suppressed, since := st.suppressed, st.since
	st.last, st.suppressed, st.since = now, 0, time.Time{}
	a.mu.Unlock()

	err := a.send(ctx, ev, program, word, now, suppressed, since)
	if err != nil {
		// The mail did not go out: the alerts it would have reported, and
		// this one, are reported by the next mail for this key.
		first := now
		if suppressed > 0 {
			first = since
		}
		a.mu.Lock()
		if st.suppressed == 0 || first.Before(st.since) {
			st.since = first
		}
		st.suppressed += suppressed + 1
		a.mu.Unlock()
		return err
	}
	a.log.Info("alert mail sent", "program", program, "event", string(ev.Kind), "to", len(ev.Config.EmailAlerts))
	return nil
}

func (a *Alerter) send(ctx context.Context, ev usrsvc.Event, program, word string, now time.Time, suppressed int, since time.Time) error {
	host := a.opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	host = headerSafe(host)
	if host == "" {
		host = "localhost"
	}
	msg, err := a.message(ev, headerSafe(program), word, host, now, suppressed, since)
	if err != nil {
		return fmt.Errorf("alert %s %s: %w", program, ev.Kind, err)
	}
	path, err := lookSendmail(a.opts.Path)
	if err != nil {
		return fmt.Errorf("alert %s %s: %w", program, ev.Kind, err)
	}
	if err := runSendmail(ctx, path, a.opts.Timeout, msg); err != nil {
		return fmt.Errorf("alert %s %s: %w", program, ev.Kind, err)
	}
	return nil
}

// message builds the mail: headers from config values, host and program
// name only, then a blank line and the body.
func (a *Alerter) message(ev usrsvc.Event, program, word, host string, now time.Time, suppressed int, since time.Time) ([]byte, error) {
	var to []string
	for _, addr := range ev.Config.EmailAlerts {
		if addr == nil {
			continue
		}
		s := addr.String()
		if hasControl(s) || hasControl(addr.Address) || hasControl(addr.Name) {
			return nil, fmt.Errorf("email_alerts address %q contains a control character", addr.Address)
		}
		to = append(to, s)
	}
	if len(to) == 0 {
		return nil, errors.New("no valid email_alerts address")
	}
	from := &mail.Address{Address: "usrsvcd@" + domainSafe(host)}
	if a.opts.From != "" {
		f, err := mail.ParseAddress(a.opts.From)
		if err != nil {
			return nil, fmt.Errorf("from address %q: %w", a.opts.From, err)
		}
		from = f
	}
	fromStr := from.String()
	if hasControl(fromStr) {
		return nil, fmt.Errorf("from address %q contains a control character", a.opts.From)
	}
	subject := "[usrsvcd] " + program + " " + word + " on " + host

	var b bytes.Buffer
	fmt.Fprintf(&b, "To: %s\n", strings.Join(to, ",\n "))
	fmt.Fprintf(&b, "From: %s\n", fromStr)
	fmt.Fprintf(&b, "Subject: %s\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\n", now.Format(time.RFC1123Z))
	b.WriteString("Auto-Submitted: auto-generated\n")
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n")
	b.WriteString("\n")
	writeAlertBody(&b, ev, program, host, suppressed, since, a.opts.RateLimit)
	return b.Bytes(), nil
}

// writeAlertBody writes the body of an alert: what happened, the config
// values involved and the tail of the program's stderr file. Every line is
// made valid UTF-8 without control characters.
func writeAlertBody(b *bytes.Buffer, ev usrsvc.Event, program, host string, suppressed int, since time.Time, rate time.Duration) {
	pc := ev.Config
	// line writes one line; the continuation lines of a multi-line value
	// are indented like its first line.
	line := func(format string, args ...any) {
		text := fmt.Sprintf(format, args...)
		indent := ""
		if strings.Contains(text, "\n") {
			first, _, _ := strings.Cut(text, "\n")
			if i := strings.LastIndex(first, "= "); i >= 0 && strings.HasPrefix(first, "  ") {
				indent = strings.Repeat(" ", i+2)
			} else if i := strings.Index(first, ":"); i >= 0 {
				indent = strings.Repeat(" ", i+1+len(first[i+1:])-len(strings.TrimLeft(first[i+1:], " ")))
			}
		}
		for i, l := range strings.Split(text, "\n") {
			if i > 0 {
				b.WriteString(indent)
			}
			b.WriteString(bodySafe(l))
			b.WriteByte('\n')
		}
	}
	switch ev.Kind {
	case usrsvc.EventRestarting:
		line("usrsvcd on %s found program %s stopped and restarts it.", host, program)
	case usrsvc.EventMonitorFailed:
		if ev.Monitor != "" {
			line("usrsvcd on %s restarts program %s: its monitor %s failed.", host, program, ev.Monitor)
		} else {
			line("usrsvcd on %s restarts program %s: a monitor failed.", host, program)
		}
	case usrsvc.EventGaveUp:
		line("usrsvcd on %s gave up restarting program %s (maxrestarts reached).", host, program)
		line("It stays stopped until it is started by hand, its config changes, or usrsvcd restarts.")
	case usrsvc.EventHealthFailed:
		if ev.Config != nil && ev.Config.CheckAction == "alert" {
			line("Program %s on %s is unhealthy: its health check %s failed (check_action = alert: not restarted).", program, host, ev.Monitor)
		} else {
			line("Program %s on %s is unhealthy: its health check %s failed; usrsvcd restarts it.", program, host, ev.Monitor)
		}
	}
	b.WriteByte('\n')
	if ev.Reason != "" {
		line("Reason:       %s", ev.Reason)
	}
	if !ev.Time.IsZero() {
		line("Time:         %s", ev.Time.Format(time.RFC3339))
	}
	switch {
	case ev.Kind == usrsvc.EventRestarting && ev.PID != 0:
		line("Old pid:      %d", ev.PID) // the process that stopped (PID is the process concerned)
	case ev.PID != 0:
		line("Pid:          %d", ev.PID)
	}
	if ev.OldPID != 0 && ev.OldPID != ev.PID {
		line("Old pid:      %d", ev.OldPID)
	}
	if ev.Exit != nil {
		line("Exit:         %s", ev.Exit)
	}
	if pc.MaxRestarts > 0 {
		line("Restarts:     %d of maxrestarts %d", ev.Restarts, pc.MaxRestarts)
	} else {
		line("Restarts:     %d (maxrestarts 0: unlimited)", ev.Restarts)
	}
	if suppressed > 0 {
		b.WriteByte('\n')
		what := "similar alerts were"
		if suppressed == 1 {
			what = "similar alert was"
		}
		line("%d %s suppressed since %s (at most one mail per program and event every %v).",
			suppressed, what, since.Format(time.RFC3339), rate)
	}

	b.WriteByte('\n')
	if pc.File != "" {
		line("Configuration ([Program:%s] at %s:%d):", program, pc.File, pc.Line)
	} else {
		line("Configuration ([Program:%s]):", program)
	}
	line("  command            = %s", pc.Command)
	if pc.UseShell {
		line("  useshell           = true")
	}
	line("  success_seconds    = %s", secs(pc.SuccessSeconds))
	line("  maxrestarts        = %d", pc.MaxRestarts)
	line("  restart_delay      = %s", secs(pc.RestartDelay))
	m := pc
	if m.ActivityFile != "" || m.RSSLimitKB > 0 || ev.Kind == usrsvc.EventMonitorFailed {
		line("  monitor_after      = %s", secs(m.MonitorAfter))
		line("  monitor_interval   = %s", secs(m.MonitorInterval))
		if m.ActivityFile != "" {
			line("  activityfile       = %s", m.ActivityFile)
			line("  activityfile_limit = %s", secs(m.ActivityFileLimit))
		}
		if m.RSSLimitKB > 0 {
			line("  rss_limit          = %d", m.RSSLimitKB)
		}
	}
	if pc.Stderr != "" {
		b.WriteByte('\n')
		lines, err := stderrTail(pc.Stderr)
		switch {
		case err != nil:
			line("The stderr file %s could not be read: %v", pc.Stderr, err)
		case len(lines) == 0:
			line("The stderr file %s is empty.", pc.Stderr)
		default:
			line("Last %d lines of %s:", len(lines), pc.Stderr)
			for _, l := range lines {
				line("  %s", l)
			}
		}
	}
}

// secs formats a duration in seconds, as the config writes it.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// stderrTail returns the last lines of the stderr file path for the body,
// each cut below the mail line limit.
func stderrTail(path string) ([]string, error) {
	lines, err := logfile.Tail(path, 0, alertTailLines, alertTailBytes)
	for i, l := range lines {
		if len(l) > alertLineBytes {
			lines[i] = strings.ToValidUTF8(l[:alertLineBytes], "") + " [...]"
		}
	}
	return lines, err
}

// headerSafe returns s without control characters (CR and LF above all) and
// with runs of spaces collapsed, for use in a header.
func headerSafe(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// domainSafe keeps the characters of a host name that a mail domain may hold.
func domainSafe(host string) string {
	s := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return r
		}
		return -1
	}, host)
	s = strings.Trim(s, ".-")
	if s == "" {
		return "localhost"
	}
	return s
}

// bodySafe makes one body line valid UTF-8 without control characters
// except tabs.
func bodySafe(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return r
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return '?'
		}
		return r
	}, s)
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// lookSendmail resolves Options.Path.
func lookSendmail(path string) (string, error) {
	if path != "" && path != "auto" {
		p, err := exec.LookPath(path)
		if err != nil {
			return "", fmt.Errorf("sendmail: %w", err)
		}
		return p, nil
	}
	for _, p := range sendmailPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath("sendmail")
	if err != nil {
		return "", fmt.Errorf("sendmail not found in %s or $PATH: %w", strings.Join(sendmailPaths, ", "), err)
	}
	return p, nil
}

// runSendmail runs `path -t -i` with msg on stdin in a process group of its
// own, killed (the whole group) when ctx is done or timeout has passed.
func runSendmail(parent context.Context, path string, timeout time.Duration, msg []byte) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-t", "-i")
	cmd.Stdin = bytes.NewReader(msg)
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group of sendmail, so that the children of a hanging script die too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A child that escaped the group and keeps the output pipe open must
	// not hold Alert past the timeout.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if parent.Err() != nil {
		return fmt.Errorf("%s -t -i: %w (%w)", path, err, context.Cause(parent))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s -t -i killed: no result within %v: %w", path, timeout, ctx.Err())
	}
	if o := strings.TrimSpace(bodySafe(strings.ReplaceAll(out.String(), "\n", " | "))); o != "" {
		return fmt.Errorf("%s -t -i: %w: %s", path, err, o)
	}
	return fmt.Errorf("%s -t -i: %w", path, err)
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 4096 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
