package usrsvc

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Readiness: with the ready key, a start succeeds when the program is
// ready — it accepts a connection (tcp:HOST:PORT), answers a GET with 2xx
// or 3xx (http:URL), writes a matching line to its output (log:REGEX) or
// sends READY=1 to $NOTIFY_SOCKET (notify, as systemd's sd_notify) — not
// after a fixed success_seconds. The launcher holds the start's window open
// until the caller says the program is ready, or ready_timeout passes: the
// start then fails and what it launched is stopped.

// readyPoll is how often a tcp, http or log readiness is looked at.
const readyPoll = 100 * time.Millisecond

// readyProbe watches one start for its readiness.
type readyProbe struct {
	kind, arg string
	re        *regexp.Regexp
	files     []string // log: the output files, and where their new lines start
	offsets   []int64
	conn      *net.UnixConn // notify
	status    string        // notify: the last STATUS= the program sent
}

// readyTimeout is ready_timeout with its default.
func readyTimeout(pc *Program) time.Duration {
	if pc.ReadyTimeout > 0 {
		return pc.ReadyTimeout
	}
	return defaultReadyTimeout
}

// newReadyProbe prepares the readiness of a start of pc, before its
// launch: the notify socket (its address goes in the program's
// environment as NOTIFY_SOCKET), or the size of its output files (lines
// written before the launch do not count).
func newReadyProbe(pc *Program) (*readyProbe, error) {
	kind, arg, _ := strings.Cut(pc.Ready, ":")
	r := &readyProbe{kind: strings.ToLower(kind), arg: arg}
	switch r.kind {
	case "log":
		re, err := compileProcTitleRE(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: ready = %s: %w", ErrInvalidConfig, pc.Ready, err)
		}
		r.re = re
		r.files = []string{pc.Stdout}
		if pc.Stderr != pc.Stdout {
			r.files = append(r.files, pc.Stderr)
		}
		for _, f := range r.files {
			var size int64
			if fi, err := os.Stat(f); err == nil {
				size = fi.Size()
			}
			r.offsets = append(r.offsets, size)
		}
	case "notify":
		// An abstract socket (no file to clean up, no path length limit);
		// another account could reach it, so only this account's
		// messages count (SO_PASSCRED).
		var b [12]byte
		rand.Read(b[:])
		addr := &net.UnixAddr{Name: "@usrsvc-notify-" + hex.EncodeToString(b[:]), Net: "unixgram"}
		conn, err := net.ListenUnixgram("unixgram", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: the notify socket: %w", ErrFailed, err)
		}
		rc, err := conn.SyscallConn()
		if err == nil {
			rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) })
		}
		r.conn = conn
	}
	return r, nil
}

// env is what the program's environment gains for its readiness.
func (r *readyProbe) env() []string {
	if r.conn == nil {
		return nil
	}
	return []string{"NOTIFY_SOCKET=" + r.conn.LocalAddr().String()}
}

// close releases the notify socket.
func (r *readyProbe) close() {
	if r.conn != nil {
		r.conn.Close()
	}
}

// wait returns true once the program is ready, false when ctx ends first.
func (r *readyProbe) wait(ctx context.Context) bool {
	if r.kind == "notify" {
		return r.waitNotify(ctx)
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		if r.ready(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// ready is one look (tcp, http, log).
func (r *readyProbe) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	switch r.kind {
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", r.arg)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	case "http":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.arg, nil)
		if err != nil {
			return false
		}
		client := &http.Client{Transport: healthTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode <= 399
	case "log":
		for i, f := range r.files {
			if r.logMatch(i, f) {
				return true
			}
		}
	}
	return false
}

// logMatch reads what file i gained and reports whether a whole new line
// matches.
func (r *readyProbe) logMatch(i int, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(r.offsets[i], io.SeekStart); err != nil {
		return false
	}
	br := bufio.NewReader(io.LimitReader(f, 4<<20))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false // a partial line is read again when whole
		}
		r.offsets[i] += int64(len(line))
		if r.re.MatchString(strings.TrimRight(line, "\r\n")) {
			return true
		}
	}
}

// waitNotify reads the notify socket until READY=1 from this account.
func (r *readyProbe) waitNotify(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() { r.conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	uid := uint32(os.Getuid())
	for ctx.Err() == nil {
		n, oobn, _, _, err := r.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			continue
		}
		if !fromUID(oob[:oobn], uid) {
			continue
		}
		ready := false
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			switch {
			case line == "READY=1":
				ready = true
			case strings.HasPrefix(line, "STATUS="):
				r.status = strings.TrimPrefix(line, "STATUS=")
			}
		}
		if ready {
			return true
		}
	}
	return false
}

// fromUID reports whether a message's credentials say it comes from uid.
func fromUID(oob []byte, uid uint32) bool {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if cred, err := syscall.ParseUnixCredentials(&m); err == nil {
			return cred.Uid == uid
		}
	}
	return false
}
