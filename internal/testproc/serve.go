package testproc

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The helpers that a health check or a readiness check looks at.

// after waits for the duration of --after (0 when unset).
func (h *helper) after() {
	if v, ok := h.opt("after"); ok {
		if d, err := time.ParseDuration(v); err == nil {
			time.Sleep(d)
		}
	}
}

// httpServer listens on --listen=ADDR (after --after) and answers GET
// with the status held by --status-file (200 when it does not exist) and
// the body "ok". While --hang-file exists it accepts connections and
// never answers.
func (h *helper) httpServer() int {
	addr, ok := h.opt("listen")
	if !ok {
		return usage(h, "needs --listen=HOST:PORT")
	}
	statusFile, _ := h.opt("status-file")
	hangFile, _ := h.opt("hang-file")
	h.after()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usage(h, "%v", err)
	}
	h.writeReady()
	fmt.Println("listening on", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hangFile != "" {
			for {
				if _, err := os.Stat(hangFile); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		status := 200
		if statusFile != "" {
			if data, err := os.ReadFile(statusFile); err == nil {
				if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
					status = n
				}
			}
		}
		w.WriteHeader(status)
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	h.block()
	return 0
}

// say prints --line on stdout after --after, then blocks.
func (h *helper) say() int {
	h.after()
	line, _ := h.opt("line")
	fmt.Println(line)
	h.writeReady()
	h.block()
	return 0
}

// notify sends READY=1 (and STATUS=--status) to $NOTIFY_SOCKET after
// --after, then blocks.
func (h *helper) notify() int {
	h.after()
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		fmt.Fprintln(os.Stderr, "testproc notify: no NOTIFY_SOCKET")
		return 3
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return usage(h, "%v", err)
	}
	msg := "READY=1"
	if s, ok := h.opt("status"); ok {
		msg += "\nSTATUS=" + s
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return usage(h, "%v", err)
	}
	conn.Close()
	h.writeReady()
	h.block()
	return 0
}

// onHup appends a line to --out at each SIGHUP, and blocks.
func (h *helper) onHup() int {
	out, _ := h.opt("out")
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP)
	h.writeReady()
	go func() {
		for range ch {
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				fmt.Fprintf(f, "hup %d\n", os.Getpid())
				f.Close()
			}
		}
	}()
	h.block()
	return 0
}

// reexec, at SIGUSR2, starts a new copy of itself (its successor, as
// nginx's or unicorn's binary upgrade does: same command line, a new
// process), waits for it to be ready, and exits.
func (h *helper) reexec() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	next := h.ready + ".next"
	if os.Getenv("TESTPROC_SUCCESSOR") == "1" {
		h.ready = next // the same command line; its readiness elsewhere
	}
	h.writeReady()
	go func() {
		<-ch
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), "TESTPROC_SUCCESSOR=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testproc reexec:", err)
			exit(3)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(next); err == nil {
				break
			}
		}
		exit(0)
	}()
	h.block()
	return 0
}
