// Command embed is a Go service that supervises helper processes it
// defines in Go, with no configuration file: an HTTP server ("web", checked
// by a custom health monitor) and a worker that writes a line a second.
// The helpers are this same binary, run with -helper.
//
// They run detached, as every usrsvc program does: stopping embed (Ctrl-C,
// or -for) leaves them running, and the next embed adopts them. -stop stops
// them before embed exits.
//
//	go run ./examples/embed                 # until Ctrl-C; the helpers keep running
//	go run ./examples/embed -for 10s -stop  # 10 s, then stop the helpers too
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-helper" {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	home, _ := os.UserHomeDir()
	stateDir := flag.String("state", filepath.Join(home, ".local", "state", "usrsvc-embed"),
		"state directory: locks, records, and the helpers' pidfiles and logs")
	addr := flag.String("addr", "127.0.0.1:8089", "the web helper's listen address")
	runFor := flag.Duration("for", 0, "supervise this long (0: until SIGINT or SIGTERM)")
	stop := flag.Bool("stop", false, "stop the helpers before exiting (default: leave them running)")
	flag.Parse()

	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cfg := usrsvc.NewConfig()
	cfg.StateDir = *stateDir
	web := usrsvc.NewProgram("web", self, "-helper", "web", *addr)
	// Matched by the tail of its title, so that the next embed (another
	// build, another path) adopts it instead of starting a second one.
	web.ProcTitleRE = regexp.MustCompile(` -helper web ` + regexp.QuoteMeta(*addr) + `$`)
	web.MonitorAfter = 2 * time.Second
	worker := usrsvc.NewProgram("worker", self, "-helper", "worker")
	worker.ProcTitleRE = regexp.MustCompile(` -helper worker$`)
	for _, pc := range []*usrsvc.Program{web, worker} {
		pc.SuccessSeconds = 500 * time.Millisecond
		if err := cfg.Add(pc); err != nil {
			fatal(err)
		}
	}

	m, err := usrsvc.NewManager(cfg, usrsvc.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnEvent: func(ev usrsvc.Event) { // called from several goroutines: Printf is safe
			fmt.Printf("event: %s %s pid=%d %s\n", ev.Program, ev.Kind, ev.PID, ev.Reason)
		},
	})
	if err != nil {
		fatal(err)
	}
	if _, err := m.AddMonitor("web", HTTPCheck{URL: "http://" + *addr + "/healthz"}); err != nil {
		fatal(err)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *runFor > 0 {
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	// Run adopts what runs, starts the rest, restarts what stops and runs
	// the monitor; when ctx ends it returns, and the helpers keep running.
	if err := m.Run(ctx); err != nil {
		fatal(err)
	}

	bg := context.Background()
	if *stop {
		for _, r := range m.DoAll(bg, usrsvc.ActionStop, nil, true) {
			fmt.Printf("stop %s: %s\n", r.Program, message(r))
		}
	}
	for _, r := range m.DoAll(bg, usrsvc.ActionStatus, nil, false) {
		if st := r.Status; r.Err == nil && st.Running {
			fmt.Printf("%s: running, pid %d (left running)\n", r.Program, st.Process.PID)
		} else {
			fmt.Printf("%s: not running (%s)\n", r.Program, message(r))
		}
	}
}

func message(r usrsvc.Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return r.Status.Message
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "embed:", err)
	os.Exit(1)
}

// HTTPCheck is a custom usrsvc.Monitor: the program must answer HTTP GET
// on URL with a 2xx status, or it is restarted.
type HTTPCheck struct {
	URL string
}

// Name implements usrsvc.Monitor.
func (h HTTPCheck) Name() string { return "http" }

// Check implements usrsvc.Monitor: an error restarts the program, one that
// wraps usrsvc.ErrMonitorUnavailable is only logged.
func (h HTTPCheck) Check(ctx context.Context, p usrsvc.Process) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", usrsvc.ErrMonitorUnavailable, err) // our own problem: logged, not a restart
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", h.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	}
	return nil
}

// helper is what the helpers run: "web ADDR" serves /healthz, "worker"
// writes a line a second to its stdout (its log in the state directory).
func helper(name string, args []string) int {
	switch {
	case name == "web" && len(args) == 1:
		http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		fmt.Fprintln(os.Stderr, http.ListenAndServe(args[0], nil))
		return 1
	case name == "worker" && len(args) == 0:
		for n := 1; ; n++ {
			fmt.Printf("%s worker: tick %d\n", time.Now().Format(time.RFC3339), n)
			time.Sleep(time.Second)
		}
	}
	fmt.Fprintf(os.Stderr, "embed: unknown helper %s %q\n", name, args)
	return 2
}
