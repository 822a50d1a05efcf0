package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/atomicfile"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/launch"
	"github.com/usrsvc/usrsvc/internal/logfile"
	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/sdnotify"
	"github.com/usrsvc/usrsvc/internal/statedir"
	"github.com/usrsvc/usrsvc/internal/version"
	"github.com/usrsvc/usrsvc/sendmail"
)

// detachedEnv marks the detached daemon started by "usrsvcd start": it
// reports readiness on fd 3 and logs to a file by default.
const detachedEnv = "USRSVCD_DETACHED"

// Timeouts of the daemon's control actions; variables for tests.
var (
	startTimeout  = 30 * time.Second // usrsvcd start: waiting for the detached daemon to be up
	stopTimeout   = 30 * time.Second // usrsvcd stop: waiting for the daemon to exit
	rereadTimeout = 10 * time.Second // usrsvcd reread: waiting for the acknowledgement
	quitGrace     = 10 * time.Second // SIGQUIT: exit even if the shutdown has not finished by then
	burstQuiet    = 2 * time.Second  // a burst of work is over after this long without an event
)

func loadConfig(path string, stderr io.Writer) (*usrsvc.Config, int) {
	cfg, err := loadAll(path)
	if err != nil {
		fmt.Fprintf(stderr, "usrsvcd: the configuration does not load:\n%v\n", err)
		return nil, int(exitcode.Of(err))
	}
	return cfg, 0
}

// actionStart refuses when a daemon runs (135), then runs in the
// foreground or detaches and waits until the detached daemon is up.
func actionStart(cfgPath string, foreground bool, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	if foreground || os.Getenv(detachedEnv) == "1" {
		// The detached daemon checks again, and reports to the waiting
		// "usrsvcd start" over its ready pipe: another start may have
		// won the race since.
		return runDaemon(cfg, os.Getenv(detachedEnv) == "1", stderr)
	}
	if pid, running := daemonPID(cfg); running {
		fmt.Fprintln(stderr, alreadyRunning(pid))
		return int(exitcode.UsrsvcdAlreadyRunning)
	}
	return detach(cfg, stdout, stderr)
}

// alreadyRunning is the message of a start refused because a daemon runs.
func alreadyRunning(pid int) string {
	if pid <= 0 {
		return "usrsvcd is already running (pid unknown: its pidfile and lock file do not name it)"
	}
	return fmt.Sprintf("usrsvcd is already running (pid %d)", pid)
}

// detach starts this binary again in a new session with nothing of our
// terminal or pipes (stdio on /dev/null), and waits for it to report that
// it holds the daemon lock and supervises.
func detach(cfg *usrsvc.Config, stdout, stderr io.Writer) int {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "usrsvcd: %v\n", err)
		return int(exitcode.UnknownFailure)
	}
	defer readyR.Close()
	cmd := exec.Command("/proc/self/exe", "--config", cfg.Path, "start")
	cmd.Args[0] = "usrsvcd"
	cmd.Env = append(launch.CleanEnv(os.Environ(), detachedEnv), detachedEnv+"=1")
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		readyW.Close()
		fmt.Fprintf(stderr, "usrsvcd: cannot start the daemon: %v\n", err)
		return int(exitcode.UnknownFailure)
	}
	readyW.Close()
	pid := cmd.Process.Pid
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(readyR).ReadString('\n')
		ch <- answer{strings.TrimSpace(line), err}
	}()
	select {
	case a := <-ch:
		if a.line == "ok" {
			cmd.Process.Release()
			fmt.Fprintf(stdout, "usrsvcd started (pid %d), logging to %s\n", pid, logPath(cfg, true))
			return 0
		}
		cmd.Wait()
		msg := a.line
		if msg == "" {
			msg = "the daemon exited before it was up; see " + logPath(cfg, true)
		}
		code, text, _ := strings.Cut(msg, " ")
		var c int
		if _, err := fmt.Sscanf(code, "%d", &c); err != nil {
			c, text = int(exitcode.UnknownFailure), msg
		}
		if exitcode.Code(c) == exitcode.UsrsvcdAlreadyRunning {
			fmt.Fprintln(stderr, text) // the very line of a start that found it running itself
		} else {
			fmt.Fprintf(stderr, "usrsvcd: %s\n", text)
		}
		return c
	case <-time.After(startTimeout):
		cmd.Process.Release()
		fmt.Fprintf(stderr, "usrsvcd: the daemon (pid %d) did not report within %v; see %s\n", pid, startTimeout, logPath(cfg, true))
		return int(exitcode.UnknownFailure)
	}
}

// logPath is where the daemon logs: usrsvcd_stdout, else a file in the
// state directory when detached, else stderr ("").
func logPath(cfg *usrsvc.Config, detached bool) string {
	if cfg.DaemonStdout != "" {
		return cfg.DaemonStdout
	}
	if detached {
		return filepath.Join(cfg.StateDir, "usrsvcd.log")
	}
	return ""
}

// runDaemon is the daemon itself.
func runDaemon(cfg *usrsvc.Config, detached bool, stderr io.Writer) int {
	var ready *os.File
	if detached {
		ready = os.NewFile(3, "ready")
		syscall.CloseOnExec(3)
	}
	fail := func(code exitcode.Code, msg string) int {
		if ready != nil {
			fmt.Fprintf(ready, "%d %s\n", int(code), msg)
			ready.Close()
		}
		fmt.Fprintf(stderr, "usrsvcd: %s\n", msg)
		return int(code)
	}
	if pid, running := daemonPID(cfg); running {
		return fail(exitcode.UsrsvcdAlreadyRunning, alreadyRunning(pid))
	}

	var out io.Writer = stderr
	var logs []*logfile.File
	if p := logPath(cfg, detached); p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fail(exitcode.InsufficientPermissions, "cannot create the log directory: "+err.Error())
		}
		lf, err := logfile.Open(p)
		if err != nil {
			return fail(exitcode.InsufficientPermissions, "cannot open the log file: "+err.Error())
		}
		out = lf
		logs = append(logs, lf)
		errPath := cfg.DaemonStderr
		if errPath == "" || errPath == "stdout" {
			errPath = p
		}
		ef, err := logfile.Open(errPath)
		if err == nil {
			ef.Fd2 = true
			ef.Reopen()
			logs = append(logs, ef)
		}
	}
	newHandler := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "json" {
			return slog.NewJSONHandler(w, nil)
		}
		return slog.NewTextHandler(w, nil)
	}
	// Lines lost to a full disk are reported, in the log's own format, by
	// the first line written again.
	for _, lf := range logs {
		lf.Lost = func(n int, err error) []byte {
			var b bytes.Buffer
			slog.New(newHandler(&b)).Warn(fmt.Sprintf("%d log lines lost: %v", n, err), "event", "log-lost", "lines", n)
			return b.Bytes()
		}
	}
	logger := slog.New(newHandler(out))
	if os.Geteuid() == 0 {
		logger.Warn("running as root; usrsvcd is meant for a service account", "event", "warning")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var m *usrsvc.Manager
	var pidErr error // the pidfile could not be written: the daemon stops
	// Start-up and a reread load the configuration and start or adopt
	// every program: megabytes of garbage with 200 programs, that Go's
	// runtime would keep resident (up to its heap goal, at least 4 MB)
	// though the daemon then idles. Once that work is over, and after any
	// burst of events that allocated a megabyte or more (200 programs
	// restarted at once), it goes back to the system (see releaseAfter).
	release := newReleaseAfter(burstQuiet)
	defer release.stop()
	opts := usrsvc.Options{
		OnEvent: func(usrsvc.Event) { release.poke() },
		Logger:  logger,
		Environ: launch.CleanEnv(os.Environ(), detachedEnv),
		Alerter: newAlerter(cfg, logger),
		Ready: func() {
			if err := atomicfile.WritePid(cfg.DaemonPidfile, os.Getpid()); err != nil {
				// Without its pidfile no usrsvcd stop or status finds
				// this daemon: it does not run (the programs do).
				pidErr = errs.File("writing usrsvcd's pidfile "+cfg.DaemonPidfile, err)
				logger.Error(pidErr.Error()+"; usrsvcd stops, the programs keep running", "event", "stopped")
				cancel()
				return
			}
			logger.Info(fmt.Sprintf("usrsvcd %s up (pid %d), supervising %d programs", version.Version, os.Getpid(), len(m.Config().Programs)), "event", "ready")
			sdnotify.Notify("READY=1\nSTATUS=supervising\nMAINPID=" + fmt.Sprint(os.Getpid()))
			if ready != nil {
				fmt.Fprintln(ready, "ok")
				ready.Close()
				ready = nil
			}
			release.arm()
		},
	}
	m, err := usrsvc.NewManager(cfg, opts)
	if err != nil {
		return fail(exitcode.Of(err), err.Error())
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				logger.Info("received "+sig.String()+", shutting down; programs keep running", "event", "shutdown")
				sdnotify.Notify("STOPPING=1")
				cancel()
			case syscall.SIGQUIT:
				// Go's own SIGQUIT dumps the goroutines and dies, leaving
				// the pidfile behind: keep the dump, then shut down like
				// SIGTERM. A daemon too wedged to shut down still goes,
				// after quitGrace.
				dumpGoroutines(os.Stderr)
				logger.Info("received SIGQUIT: goroutine dump written to usrsvcd's stderr; shutting down like SIGTERM; programs keep running",
					"event", "shutdown")
				sdnotify.Notify("STOPPING=1")
				cancel()
				time.AfterFunc(quitGrace, func() {
					logger.Error(fmt.Sprintf("not shut down %v after SIGQUIT; exiting now", quitGrace), "event", "stopped")
					removePidfile(cfg.DaemonPidfile)
					os.Exit(2)
				})
			case syscall.SIGUSR1, syscall.SIGHUP:
				sdnotify.Notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
				// A refused reread is logged once, with every problem, by
				// the library (event reload-failed): nothing to add here.
				_ = m.Reread(ctx)
				release.arm()
				sdnotify.Notify("READY=1")
			case syscall.SIGUSR2:
				for _, lf := range logs {
					if err := lf.Reopen(); err != nil {
						logger.Error("cannot reopen "+lf.Path()+": "+err.Error(), "event", "warning")
					}
				}
				// With the daemon's goroutine count and live heap (after a
				// collection): a leak check that needs no debugger
				// (threads, fds and RSS are in /proc).
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				logger.Info("log files reopened", "event", "logs-reopened", "goroutines", runtime.NumGoroutine(),
					"heap_kb", ms.HeapAlloc/1024)
			}
		}
	}()
	err = m.Run(ctx)
	removePidfile(cfg.DaemonPidfile)
	if err == nil && pidErr != nil {
		err = pidErr
	}
	if err != nil {
		return fail(exitcode.Of(err), err.Error())
	}
	logger.Info("usrsvcd stopped", "event", "stopped")
	for _, lf := range logs {
		lf.Close()
	}
	return 0
}

// dumpGoroutines writes every goroutine's stack to w, as Go's default
// SIGQUIT handler would.
func dumpGoroutines(w io.Writer) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			fmt.Fprintf(w, "SIGQUIT: goroutine dump of usrsvcd (pid %d)\n\n%s\n", os.Getpid(), buf[:n])
			return
		}
		buf = make([]byte, 2*len(buf))
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// removePidfile removes the pidfile if it still names this process.
func removePidfile(path string) {
	data, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(data)) == fmt.Sprint(os.Getpid()) {
		os.Remove(path)
	}
}

// loadForControl loads what stop and status need: they find the daemon
// through the state directory, so they work with any configuration, even a
// missing or broken one (its problems are printed as warnings, and the
// default state directory stands in for a state_dir that cannot be read).
// Only a configuration refused for safety stops them (130).
func loadForControl(path string, stderr io.Writer) (*usrsvc.Config, int) {
	cfg, err := usrsvc.LoadConfig(path)
	if cfg == nil && errors.Is(err, usrsvc.ErrResource) {
		fmt.Fprintf(stderr, "usrsvcd: %v\n", err)
		return nil, int(exitcode.Of(err))
	} else if cfg == nil {
		fmt.Fprintf(stderr, "usrsvcd: the configuration is refused:\n%v\n", err)
		return nil, int(exitcode.Of(err))
	}
	var ce *usrsvc.ConfigError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			fmt.Fprintf(stderr, "usrsvcd: warning: %s\n", p)
		}
		if cfg.StateDir == "" {
			fmt.Fprintln(stderr, "usrsvcd: no state directory is known (no home directory and no usable state_dir): fix the configuration")
			return nil, int(exitcode.InvalidConfig)
		}
		fmt.Fprintf(stderr, "usrsvcd: warning: the configuration has %s; looking for usrsvcd in the state directory %s\n",
			plural(len(ce.Problems), "problem"), cfg.StateDir)
	}
	if err := statedir.Dir(cfg.StateDir).CheckSafe(); err != nil {
		fmt.Fprintf(stderr, "usrsvcd: %v\n", err)
		return nil, int(exitcode.Of(err))
	}
	return cfg, 0
}

// actionStop sends SIGTERM to the daemon and waits until it is gone; its
// programs keep running.
func actionStop(cfgPath string, stdout, stderr io.Writer) int {
	cfg, code := loadForControl(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	return stopDaemon(cfg, stdout, stderr)
}

func stopDaemon(cfg *usrsvc.Config, stdout, stderr io.Writer) int {
	pid, running, err := statedir.Dir(cfg.StateDir).DaemonStatus(context.Background(), cfg.DaemonPidfile)
	if err != nil {
		fmt.Fprintln(stderr, "usrsvcd:", err)
		return int(exitcode.Of(err))
	}
	if !running {
		fmt.Fprintln(stdout, "usrsvcd is not running")
		return 0
	}
	if pid <= 0 {
		fmt.Fprintln(stderr, "usrsvcd runs but its pid is unknown (pidfile missing): stop it by hand")
		return int(exitcode.GeneralFailure)
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		fmt.Fprintf(stderr, "usrsvcd: cannot signal pid %d: %v\n", pid, err)
		return int(exitcode.InsufficientPermissions)
	}
	deadline := time.Now().Add(stopTimeout)
	for time.Now().Before(deadline) {
		// Gone means the lock released and the process exited (a zombie
		// has exited): it releases the lock a little before its end.
		if _, running := daemonPID(cfg); !running && !processAlive(pid) {
			fmt.Fprintf(stdout, "usrsvcd stopped (pid %d); programs keep running\n", pid)
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "usrsvcd (pid %d) did not stop within %v\n", pid, stopTimeout)
	return int(exitcode.GeneralFailure)
}

func actionRestart(cfgPath string, foreground bool, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	if c := stopDaemon(cfg, stdout, stderr); c != 0 {
		return c
	}
	return actionStart(cfgPath, foreground, stdout, stderr)
}

func actionStatus(cfgPath string, stdout, stderr io.Writer) int {
	cfg, code := loadForControl(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	pid, running, err := statedir.Dir(cfg.StateDir).DaemonStatus(context.Background(), cfg.DaemonPidfile)
	if err != nil {
		fmt.Fprintln(stderr, "usrsvcd:", err)
		return int(exitcode.Of(err))
	}
	if !running {
		fmt.Fprintln(stdout, "usrsvcd is not running")
		return int(exitcode.GeneralFailure)
	}
	fmt.Fprintf(stdout, "usrsvcd is running (pid %d)\n", pid)
	return 0
}

// actionReread validates the configuration first (130, nothing sent), then
// signals the daemon and waits for its acknowledgement.
func actionReread(cfgPath string, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(cfgPath, stderr)
	if cfg == nil {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), rereadTimeout)
	defer cancel()
	pid, summary, err := statedir.Dir(cfg.StateDir).SignalReread(ctx, cfg.DaemonPidfile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return int(exitcode.Of(err))
	}
	fmt.Fprintf(stdout, "usrsvcd (pid %d) reread the configuration: %s\n", pid, summary)
	return 0
}

// newAlerter mails the alerts of programs with email_alerts.
func newAlerter(cfg *usrsvc.Config, logger *slog.Logger) usrsvc.Alerter {
	return sendmail.New(sendmail.Options{Path: cfg.SendmailPath, Logger: logger})
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	p, err := proc.Default().Stat(pid)
	return err == nil && !p.Zombie()
}

// daemonPID reports whether a usrsvcd supervises cfg's state directory,
// and its pid (0 when unknown).
func daemonPID(cfg *usrsvc.Config) (int, bool) {
	pid, running, _ := statedir.Dir(cfg.StateDir).DaemonStatus(context.Background(), cfg.DaemonPidfile)
	return pid, running
}
