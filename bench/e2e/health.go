package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// The helpers of bench/health.sh: an HTTP endpoint that counts the health
// checks it answers (-httpserve), a free port (-freeport), and the observer
// of "hung → restarted" (-hang).

// checkCounter counts what an -httpserve endpoint answered: requests (every
// path but /count) and the connections that carried them (a manager that
// keeps its connections alive opens few; one that does not, one a check).
type checkCounter struct{ requests, conns atomic.Int64 }

type connKey struct{}

// handler answers every path with 200 "ok", but /count with the counters.
func (c *checkCounter) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/count" {
			fmt.Fprintf(w, "HTTPCOUNT requests=%d conns=%d\n", c.requests.Load(), c.conns.Load())
			return
		}
		c.requests.Add(1)
		if seen, ok := r.Context().Value(connKey{}).(*atomic.Bool); ok && !seen.Swap(true) {
			c.conns.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
}

// server is an http.Server answering with c.handler, each connection
// marked so that the connections carrying checks can be counted.
func (c *checkCounter) server() *http.Server {
	return &http.Server{
		Handler:           c.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, new(atomic.Bool))
		},
	}
}

// httpServe listens on ports TCP ports of addr's host (addr's port and the
// next ones, or ports the kernel picks when it is 0), prints
// "HTTPSERVE ports=P1,P2,..." once all listen, and serves until SIGTERM or
// SIGINT. Every port shares one counter (GET /count on any port reads it).
func httpServe(addr string, ports int) error {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	base, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("port %q: %w", p, err)
	}
	var c checkCounter
	srv := c.server()
	var lns []net.Listener
	var got []string
	for i := 0; i < max(1, ports); i++ {
		port := 0
		if base != 0 {
			port = base + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
		got = append(got, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errs <- srv.Serve(ln) }()
	}
	fmt.Printf("HTTPSERVE ports=%s\n", strings.Join(got, ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		srv.Close()
		return nil
	case err := <-errs:
		srv.Close()
		return err
	}
}

// freePort prints a TCP port of 127.0.0.1 nothing listens on (now).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// hangResult is what -hang saw: for each SIGSTOP, the time until a new
// process with the title ran (lat) and until the stopped one was gone
// (killed: gone from /proc or a zombie).
type hangResult struct {
	lat, gone []time.Duration
	// goneFirst counts the restarts where the stopped process was gone
	// before the new one ran; left, those where it was still there 15 s
	// after the new one ran (the script's cleanup kills it).
	goneFirst, left int
}

func (h hangResult) line() string {
	if len(h.lat) == 0 {
		return "HANG n=0"
	}
	s := fmt.Sprintf("HANG n=%d median_ms=%.0f min_ms=%.0f max_ms=%.0f", len(h.lat), ms(median(h.lat)), ms(slices.Min(h.lat)), ms(slices.Max(h.lat)))
	if len(h.gone) > 0 {
		s += fmt.Sprintf(" gone_median_ms=%.0f", ms(median(h.gone)))
	}
	s += fmt.Sprintf(" gone_first=%d left_stopped=%d", h.goneFirst, h.left)
	var all []string
	for _, d := range h.lat {
		all = append(all, fmt.Sprintf("%.0f", ms(d)))
	}
	return s + " all_ms=" + strings.Join(all, ",")
}

// answers reports whether url answers 200 within a second.
func answers(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// observeHangs stops the process titled title (exactly) with SIGSTOP n
// times and measures, polling /proc every ≤2 ms, how long until a new
// non-zombie process with that title runs, and until the stopped one is
// gone. Before each stop it waits until the process answers url, then gap
// + rand(0, gap): the manager has seen it healthy, and the stop falls at a
// random moment of its check cycle.
func observeHangs(title, url string, n int, gap time.Duration) (hangResult, error) {
	var h hangResult
	match := func(t string) bool { return t == title }
	find := func() (pinfo, bool) {
		ps := scan(match)
		if len(ps) == 0 {
			return pinfo{}, false
		}
		return ps[0], true
	}
	client := &http.Client{Timeout: time.Second}
	for i := 0; i < n; i++ {
		deadline := time.Now().Add(60 * time.Second)
		for !answers(client, url) {
			if time.Now().After(deadline) {
				return h, fmt.Errorf("stop %d: %s does not answer", i+1, url)
			}
			time.Sleep(50 * time.Millisecond)
		}
		client.CloseIdleConnections()
		time.Sleep(gap + time.Duration(rand.Int64N(int64(gap))))
		cur, ok := find()
		if !ok {
			return h, fmt.Errorf("stop %d: no process titled %q", i+1, title)
		}
		pfd, err := proc.PidfdOpen(cur.pid)
		if err != nil {
			return h, fmt.Errorf("pidfd %d: %w", cur.pid, err)
		}
		t0 := time.Now()
		if err := pfd.Signal(syscall.SIGSTOP); err != nil {
			pfd.Close()
			return h, fmt.Errorf("stop %d: %w", cur.pid, err)
		}
		// gone: the stopped process is no longer in /proc, or a zombie.
		gone := func() bool {
			p, err := proc.Default().Stat(cur.pid)
			return err != nil || p.Zombie() || p.StartTicks != cur.start
		}
		var goneAt time.Duration
		found := false
		for time.Since(t0) < 120*time.Second {
			if goneAt == 0 && gone() {
				goneAt = time.Since(t0)
			}
			if p, ok := find(); ok && (p.pid != cur.pid || p.start != cur.start) {
				found = true
				break
			}
			time.Sleep(time.Millisecond)
		}
		lat := time.Since(t0)
		if !found {
			pfd.Signal(syscall.SIGKILL)
			pfd.Close()
			return h, fmt.Errorf("stop %d: no new process within 120 s", i+1)
		}
		h.lat = append(h.lat, lat)
		if goneAt > 0 {
			h.goneFirst++
		}
		for goneAt == 0 && time.Since(t0) < lat+15*time.Second {
			if gone() {
				goneAt = time.Since(t0)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if goneAt == 0 {
			h.left++
			pfd.Signal(syscall.SIGKILL)
		} else {
			h.gone = append(h.gone, goneAt)
		}
		pfd.Close()
		fmt.Fprintf(os.Stderr, "hang %d: new process after %.0f ms, the stopped one gone after %.0f ms\n", i+1, ms(lat), ms(goneAt))
	}
	if h.left > 0 {
		return h, errors.New("a stopped process was left running after its restart")
	}
	return h, nil
}
