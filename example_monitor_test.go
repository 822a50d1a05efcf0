package usrsvc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/usrsvc/usrsvc"
)

// HTTPCheck is a custom [usrsvc.Monitor]: it GETs URL and asks for a restart
// when the answer is not 2xx or the program does not answer at all.
type HTTPCheck struct {
	URL string
}

// Name names the monitor in logs and alerts.
func (h HTTPCheck) Name() string { return "http" }

// Check GETs h.URL within ctx (usrsvcd bounds it with a timeout).
func (h HTTPCheck) Check(ctx context.Context, p usrsvc.Process) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		// A bad URL is the monitor's own failure, never a restart.
		return errors.Join(usrsvc.ErrMonitorUnavailable, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errors.Join(usrsvc.ErrMonitorUnavailable, err) // timed out: could not check
		}
		return fmt.Errorf("health check: %w", err) // not answering: restart
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health check: %s", resp.Status)
	}
	return nil
}

// A custom monitor: an HTTP health check. Register it with
// Manager.AddMonitor("web", HTTPCheck{URL: "http://127.0.0.1:8080/healthz"}),
// and usrsvcd restarts the program when Check returns an error.
func ExampleMonitor() {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	defer broken.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := usrsvc.Process{PID: 12467} // the program's process, as usrsvcd passes it

	var m usrsvc.Monitor = HTTPCheck{URL: healthy.URL + "/healthz"}
	fmt.Printf("%s: %v\n", m.Name(), m.Check(ctx, p))

	m = HTTPCheck{URL: broken.URL + "/healthz"}
	err := m.Check(ctx, p)
	fmt.Printf("%s: %v (restart: %t)\n", m.Name(), err, err != nil && !errors.Is(err, usrsvc.ErrMonitorUnavailable))
	// Output:
	// http: <nil>
	// http: health check: 503 Service Unavailable (restart: true)
}
