package web

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/xmlrpc"
)

// BenchmarkWeb200 measures, with 200 running programs, in one run:
//
//	floor   GET /static/style.css: the same server, no reading (the floor)
//	status  the library's status of every program alone (what a reading starts with)
//	page    GET /: a fresh reading of every program, rendered
//	api     GET /api/v1/programs: the same reading, as JSON
//	metrics GET /metrics: a scrape (always a fresh reading)
//	rpc     POST /RPC2 supervisor.getAllProcessInfo (supervisorctl status)
//
// Each request goes over real TCP to the handler; "x_floor" is the ratio
// to the floor measured in the same run, "cpu_ms" the CPU time the test
// process used per request (steadier than wall time on a busy machine). Only under -bench (it starts 200
// processes):
//
//	go test -run xxx -bench Web200 -benchtime 50x ./web
func BenchmarkWeb200(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" || testing.Short() {
		b.Skip("starts 200 processes: only with -bench and without -short")
	}
	e, srv := benchWeb(b, 200)
	get := func(b *testing.B, path string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n == 0 {
			b.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, n)
		}
	}
	var floor float64
	measure := func(name string, f func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			f(b) // warm: connections, templates, caches
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for b.Loop() {
				f(b)
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			// CPU time of the whole test process (server, client and
			// workers): what the machine pays, steadier than wall time
			// when other work loads it.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu_ms/op")
			if name == "floor" {
				floor = per
			} else if floor > 0 {
				b.ReportMetric(per/floor, "x_floor")
			}
			b.ReportMetric(per/1e6, "ms/op")
		})
	}
	measure("floor", func(b *testing.B) { get(b, "/static/style.css") })
	measure("status", func(b *testing.B) {
		for _, r := range e.h.manager().DoAll(context.Background(), usrsvc.ActionStatus, nil, false) {
			if r.Status == nil || !r.Status.Running {
				b.Fatalf("%s not running", r.Program)
			}
		}
	})
	measure("page", func(b *testing.B) {
		e.h.reader.changed() // no reuse of the last reading: each load reads
		get(b, "/")
	})
	measure("api", func(b *testing.B) {
		e.h.reader.changed()
		get(b, "/api/v1/programs")
	})
	measure("metrics", func(b *testing.B) { get(b, "/metrics") })
	var call bytes.Buffer
	require.NoError(b, xmlrpc.EncodeCall(&call, "supervisor.getAllProcessInfo"))
	measure("rpc", func(b *testing.B) {
		resp, err := srv.Client().Post(srv.URL+"/RPC2", "text/xml", bytes.NewReader(call.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		v, err := xmlrpc.DecodeResponse(resp.Body)
		resp.Body.Close()
		if err != nil || len(v.([]any)) != 200 {
			b.Fatalf("getAllProcessInfo: %v", err)
		}
	})
}

// benchWeb starts n /bin/sleep programs (unique titles) and serves them
// over TCP; everything is stopped when the benchmark ends.
func benchWeb(b *testing.B, n int) (*uiEnv, *httptest.Server) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%03d", i+1)
	}
	e := newUIEnv(b, names, Options{})
	m := e.manager()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m.DoAll(ctx, usrsvc.ActionStop, nil, true)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, r := range m.DoAll(ctx, usrsvc.ActionStart, nil, true) {
		require.NoError(b, r.Err, r.Program)
	}
	return e, e.server()
}

// BenchmarkRender200 renders the page and the metrics of 200 synthetic
// running programs: the server's own share of a page load and a scrape,
// without reading /proc.
//
//	go test -run xxx -bench Render200 ./web
func BenchmarkRender200(b *testing.B) {
	h, _ := newTestHandler(b, Options{})
	o := &overview{Time: time.Now(), Now: time.Now().Format(time.RFC3339), Version: "x"}
	for i := range 200 {
		cpu, secs := 0.4, 12.5
		o.Programs = append(o.Programs, &programView{Name: fmt.Sprintf("p%03d", i), State: stateRunning,
			Running: true, Enabled: true, PID: 10000 + i, Started: time.Now().Unix() - 3600, Uptime: 3600,
			StartedAt: time.Now().Format(time.RFC3339), Restarts: 1, CPUPercent: &cpu, CPUSeconds: &secs,
			RSSBytes: 20 << 20, PrivateBytes: 16 << 20, Monitors: []string{"rss_limit 195.3 MiB private"},
			LastExit: &exitRec{Time: time.Now().Format(time.RFC3339), Description: "killed by signal 9", code: 137}})
	}
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := pageTemplates.ExecuteTemplate(&buf, "index.html", &pageData{Title: "t", Host: "h", Overview: o}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("metrics", func(b *testing.B) {
		h.reader.last, h.reader.lastGen = o, h.reader.gen
		reg := prometheus.NewRegistry()
		reg.MustRegister(&collector{h: h, maxAge: time.Hour})
		ph := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		for b.Loop() {
			w := httptest.NewRecorder()
			ph.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
