// Command embed shows usrsvc embedded in a Go program: it loads a usrsvc
// configuration, attaches a custom monitor (an HTTP health check), prints
// every event, and supervises the programs until interrupted (or for -for).
// Stopping it leaves the programs running, exactly like usrsvcd.
//
//	go run ./examples/embed -config ~/usrsvc.cfg -health web=http://127.0.0.1:8089/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/usrsvc/usrsvc"
)

// HTTPCheck is a custom usrsvc.Monitor: the program must answer HTTP GET
// on URL with a 2xx status, or it is restarted.
type HTTPCheck struct {
	URL string
}

// Name implements usrsvc.Monitor.
func (h HTTPCheck) Name() string { return "http " + h.URL }

// Check implements usrsvc.Monitor: an error restarts the program.
func (h HTTPCheck) Check(ctx context.Context, p usrsvc.Process) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return usrsvc.Unavailable(err.Error()) // our own problem: logged, not a restart
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %v", h.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", h.URL, resp.Status)
	}
	return nil
}

func main() {
	cfgPath := flag.String("config", "", "usrsvc config (default $USRSVC_CONFIG or ~/usrsvc.cfg)")
	health := flag.String("health", "", "PROGRAM=URL: restart PROGRAM when URL does not answer 2xx")
	runFor := flag.Duration("for", 0, "stop supervising after this long (0: until SIGINT/SIGTERM)")
	flag.Parse()

	cfg, err := usrsvc.LoadConfig(*cfgPath)
	if err != nil {
		var ce *usrsvc.ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				fmt.Fprintln(os.Stderr, p)
			}
		}
		os.Exit(int(usrsvc.CodeOf(err)))
	}
	m, err := usrsvc.NewManager(cfg, usrsvc.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		OnEvent: func(ev usrsvc.Event) {
			fmt.Printf("event %s %s pid=%d %s\n", ev.Kind, ev.Program, ev.PID, ev.Reason)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(int(usrsvc.CodeOf(err)))
	}
	if name, url, ok := strings.Cut(*health, "="); ok {
		if err := m.AddMonitor(name, HTTPCheck{URL: url}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(int(usrsvc.CodeOf(err)))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	// Run adopts what runs, starts the rest, restarts what stops, runs the
	// monitors; when ctx ends it returns and the programs keep running.
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(int(usrsvc.CodeOf(err)))
	}
	for _, r := range m.DoAll(context.Background(), usrsvc.ActionStatus, usrsvc.Sequential) {
		pid := 0
		if r.Status != nil && r.Status.Process != nil {
			pid = r.Status.Process.PID
		}
		fmt.Printf("left running: %s pid=%d (%s)\n", r.Program, pid, r.Code())
	}
}
