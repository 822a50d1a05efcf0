// The runtime would re-read the cgroup CPU limit every few seconds to adjust
// GOMAXPROCS: a wake-up of an idle daemon for nothing, so it is set once at
// start.
//go:debug updatemaxprocs=0

// Command usrsvcweb serves usrsvc over HTTP: supervisord's XML-RPC (so
// supervisorctl works unchanged), a web page, a JSON API and Prometheus
// metrics, for the programs of one account's usrsvc configuration.
//
//	usrsvcweb [--config FILE] [--listen unix:PATH|HOST:PORT]
//
// It runs in the foreground (as a [Program:web] under usrsvcd, or a systemd
// unit) until SIGTERM or SIGINT. It is a separate process: it works without
// usrsvcd and never blocks it.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cli"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/pathsafe"
	"github.com/usrsvc/usrsvc/internal/sdnotify"
	"github.com/usrsvc/usrsvc/internal/version"
	"github.com/usrsvc/usrsvc/web"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: usrsvcweb [options]
       usrsvcweb --version | --help

Serves the programs of your usrsvc configuration over HTTP: supervisord's
XML-RPC at /RPC2 (supervisorctl -s unix:///PATH/usrsvcweb.sock status), the
web page, the JSON API and Prometheus metrics. Its settings come from the
[Web] section of the main config file. It stays in the foreground until
SIGTERM or SIGINT, and takes no action.
`

const footer = `Return codes: 0 stopped by SIGTERM or SIGINT; 11 the address is in use
or another usrsvcweb serves the socket, or out of open files or disk
space; 130 invalid config (or a TCP address without a password); 131
invalid option or argument; 136 the socket or its directory cannot be
created. man usrsvcweb tells more.
`

// shutdownGrace bounds a graceful shutdown: requests in flight get this
// long, streams (tail -f, live page updates) end at once.
const shutdownGrace = 800 * time.Millisecond

// run is usrsvcweb's whole command line; it returns the exit code
// (exitcode.Code values) once the server stopped.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return runCtx(ctx, args, stdout, stderr, nil)
}

// runCtx is run with the context that stops the server; ready, when set,
// receives the listening address once the server accepts connections.
func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) int {
	c := cli.New("usrsvcweb", usage, footer, stderr)
	var configPath, listen string
	var showVersion bool
	c.String(&configPath, "c config", "FILE", "main config file (default $USRSVC_CONFIG, else $HOME/usrsvc.cfg)")
	c.String(&listen, "listen", "ADDR", "listen on ADDR (unix:/abs/path.sock or HOST:PORT) instead of [Web] listen")
	c.Bool(&showVersion, "version", "print the version and exit")
	positional, help, err := c.Parse(args, stdout)
	if help {
		return int(exitcode.Success)
	}
	if err != nil {
		return int(exitcode.InvalidAction) // Parse printed the error and the synopsis
	}
	if len(positional) > 0 {
		if positional[0] == "help" {
			c.PrintHelp(stdout)
			return int(exitcode.Success)
		}
		msg := fmt.Sprintf("unexpected argument %q: usrsvcweb takes only options", positional[0])
		if o := c.SuggestOption(positional[0]); o != nil {
			msg += "; did you mean " + o.Long() + "?"
		}
		c.UsageError("%s", msg)
		return int(exitcode.InvalidAction)
	}
	if showVersion {
		fmt.Fprintf(stdout, "usrsvcweb %s\n", version.Version)
		return int(exitcode.Success)
	}

	cfg, err := usrsvc.LoadConfig(configPath)
	var wc *web.Config
	if err == nil {
		wc, err = web.LoadConfig(cfg)
	}
	if err != nil {
		var ce *usrsvc.ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintln(stderr, "usrsvcweb: the configuration does not load; fix it (usrsvcd checkconfig lists every problem)")
		} else {
			fmt.Fprintf(stderr, "usrsvcweb: %v\n", err)
		}
		return int(exitcode.Of(err))
	}
	if listen != "" {
		if p, ok := cutUnix(listen); ok {
			if !filepath.IsAbs(p) {
				fmt.Fprintf(stderr, "usrsvcweb: --listen %s: the socket path must be absolute (unix:/path/to/usrsvcweb.sock)\n", listen)
				return int(exitcode.InvalidConfig)
			}
			wc.Listen = "unix:" + filepath.Clean(p)
		} else if err := web.CheckListenAddr(listen); err != nil {
			fmt.Fprintf(stderr, "usrsvcweb: --listen %s: %v\n", listen, err)
			return int(exitcode.InvalidConfig)
		} else {
			wc.Listen = listen
		}
	}
	if _, unix := wc.IsUnix(); !unix && wc.Password == "" {
		fmt.Fprintf(stderr, "usrsvcweb: refusing to listen on TCP address %s without a password: every local account "+
			"can reach it, and usrsvcweb runs commands as this one.\n"+
			"Fix: set username and password in the [Web] section of %s (password may be a bcrypt hash: "+
			"htpasswd -nbBC 10 USER PASSWORD), or listen on a unix socket (listen = unix:PATH).\n", wc.Listen, cfg.Path)
		return int(exitcode.InvalidConfig)
	}

	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if cfg.LogFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	logger := slog.New(handler)

	// A restart of the program that is this usrsvcweb (see web's
	// self.go) ends it with TRY_AGAIN, for usrsvcd to start it again.
	ctx, restartSelf := context.WithCancel(ctx)
	defer restartSelf()
	var selfRestart atomic.Bool
	h, err := web.New(web.Options{Config: cfg, ReadOnly: wc.ReadOnly, Username: wc.Username,
		Password: wc.Password, Logger: logger, AllowedHosts: wc.AllowedHosts,
		RestartSelf: func() { selfRestart.Store(true); restartSelf() }})
	if err != nil {
		fmt.Fprintf(stderr, "usrsvcweb: %v\n", err)
		return int(exitcode.InvalidConfig)
	}
	var certs *certReloader
	if _, unix := wc.IsUnix(); !unix && wc.TLSCert != "" {
		if certs, err = newCertReloader(wc.TLSCert, wc.TLSKey, logger); err != nil {
			fmt.Fprintf(stderr, "usrsvcweb: %v\n", err)
			return int(exitcode.InvalidConfig)
		}
	}
	ln, err := listenOn(wc.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "usrsvcweb: %v\n", err)
		if code := listenCode(err); code != exitcode.UnknownFailure {
			return int(code)
		}
		return int(exitcode.GeneralFailure) // the address cannot be listened on: no bug
	}
	addr := addrString(ln)
	ln = web.LimitListener(ln, web.MaxConns, web.MaxConnsPerPeer, logger)
	scheme := "http"
	if certs != nil {
		ln = tls.NewListener(ln, certs.tlsConfig())
		scheme = "https"
	} else if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		logger.Warn("usrsvcweb listens on "+addr+", beyond this host, without TLS: the password and everything "+
			"else cross the network in plain text; set tls_cert and tls_key in [Web], or listen on 127.0.0.1 or the unix "+
			"socket and reach it with ssh -L (see man usrsvcweb)", "listen", addr)
	}
	srv := web.NewServer(h)
	srv.ErrorLog = slog.NewLogLogger(handler, slog.LevelWarn)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// SIGHUP reloads the TLS certificate; it never ends usrsvcweb
	// (supervisorctl signal HUP all reaches it too).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				if certs != nil {
					certs.reloadLogged("SIGHUP")
				} else {
					logger.Info("SIGHUP: nothing to reload (no TLS certificate)")
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	logger.Info("usrsvcweb listening", "listen", addr, "scheme", scheme, "programs", len(cfg.Programs),
		"config", cfg.Path, "read_only", wc.ReadOnly, "auth", wc.Password != "", "pid", os.Getpid())
	sdnotify.Notify("READY=1")
	if ready != nil {
		ready(addr)
	}

	select {
	case err := <-served:
		logger.Error("usrsvcweb stopped serving", "err", err)
		return int(exitcode.UnknownFailure)
	case <-ctx.Done():
	}
	sdnotify.Notify("STOPPING=1")
	h.Close() // streams end now
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	// Serve may not have taken the listener yet when Shutdown ran (a stop
	// right after the start), and then closes it only when its goroutine
	// runs: close it here, which removes a unix socket, and let Serve end.
	ln.Close()
	select {
	case <-served:
	case <-sctx.Done():
	}
	if selfRestart.Load() {
		logger.Info("usrsvcweb stopped for a restart of itself: usrsvcd starts it again", "listen", wc.Listen, "code", int(exitcode.TryAgain))
		return int(exitcode.TryAgain)
	}
	logger.Info("usrsvcweb stopped", "listen", wc.Listen)
	return int(exitcode.Success)
}

func cutUnix(s string) (string, bool) { return strings.CutPrefix(s, "unix:") }

// listenError is a listener that cannot be opened, with its exit code.
type listenError struct {
	code exitcode.Code
	msg  string
}

func (e *listenError) Error() string { return e.msg }

// listenCode is the exit code of listenOn's error: 11 (TRY_AGAIN) when the
// address is in use (by another usrsvcd or another server: it may be free
// later, and a supervisor's retry then succeeds), 136 when it cannot be
// used, 130 when the configuration names an unsafe place.
func listenCode(err error) exitcode.Code {
	var le *listenError
	if errors.As(err, &le) {
		return le.code
	}
	return exitcode.Of(err)
}

// listenOn opens the listener: a unix socket created 0600 in a directory
// other accounts cannot write (a stale socket left by a killed usrsvcweb
// is replaced, a live one is not, and neither is one of another
// account), or a TCP address.
func listenOn(addr string) (net.Listener, error) {
	path, ok := cutUnix(addr)
	if !ok {
		ln, err := net.Listen("tcp", addr)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			_, port, _ := net.SplitHostPort(addr)
			return nil, &listenError{exitcode.TryAgain, fmt.Sprintf("cannot listen on %s: the address is in use by another "+
				"program (ss -ltnp 'sport = :%s' names it); stop it, or set another listen in [Web]", addr, port)}
		case errors.Is(err, syscall.EACCES):
			return nil, &listenError{exitcode.InsufficientPermissions, fmt.Sprintf("cannot listen on %s: permission denied "+
				"(ports below 1024 need privileges); choose a port from 1024 up", addr)}
		case err != nil:
			return nil, &listenError{exitcode.InsufficientPermissions, fmt.Sprintf("cannot listen on %s: %v", addr, err)}
		}
		return ln, nil
	}
	dir := filepath.Dir(path)
	if err := pathsafe.Dir(dir); err != nil {
		return nil, &listenError{exitcode.InvalidConfig, fmt.Sprintf("socket %s: %v", path, err)}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: cannot create %s for the socket: %v", usrsvc.ErrPermission, dir, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%w: %s exists and is not a socket: remove it or choose another listen path", usrsvc.ErrPermission, path)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
			return nil, &listenError{exitcode.InsufficientPermissions, fmt.Sprintf("%s is a socket of uid %d, not yours (uid %d): "+
				"another account put it there, and usrsvcweb neither removes nor replaces it; find out why, remove it, "+
				"and keep the socket in a directory only you can write", path, st.Uid, os.Geteuid())}
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, &listenError{exitcode.TryAgain, fmt.Sprintf("another usrsvcweb already listens on %s: stop it first", path)}
		}
		os.Remove(path) // stale: its server is gone
	}
	old := syscall.Umask(0o177) // the socket is born 0600: no window where others may connect
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot listen on %s: %v", usrsvc.ErrPermission, path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: chmod 0600 %s: %v", usrsvc.ErrPermission, path, err)
	}
	return ln, nil
}

func addrString(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return ln.Addr().String()
}
