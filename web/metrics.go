package web

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// metricsRoutes registers /metrics, the Prometheus metrics of every
// program and of usrsvcd, with usrsvcweb's own process and Go runtime
// metrics. Each scrape reads the programs' status then (one reading shared
// with a page load at the same moment); nothing is read between scrapes.
func (h *Handler) metricsRoutes() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{h: h},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	h.handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{h},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             scrapeTimeout,
	}).ServeHTTP)
}

// scrapeTimeout bounds one scrape.
const scrapeTimeout = 10 * time.Second

var (
	programLabels = []string{"program"}

	descUp = prometheus.NewDesc("usrsvc_program_up",
		"1 when the program's process runs, else 0.", programLabels, nil)
	descState = prometheus.NewDesc("usrsvc_program_state",
		"The program's current state, as its label (running, starting, backoff, gave-up, stopped-by-hand, exited, stopped, disabled, removed, unknown); always 1.",
		[]string{"program", "state"}, nil)
	descEnabled = prometheus.NewDesc("usrsvc_program_enabled",
		"1 when the program is enabled (enabled = true), else 0.", programLabels, nil)
	descRestarts = prometheus.NewDesc("usrsvc_program_restarts_total",
		"Automatic restarts by usrsvcd counted for maxrestarts; it starts again from 0 after a manual start, a reread that changed the program, or 60 s of running.",
		programLabels, nil)
	descLastExit = prometheus.NewDesc("usrsvc_program_last_exit_code",
		"How the program last ended, as usrsvcd saw it: its exit status, or 128 + the signal that killed it; -1 when unknown.",
		programLabels, nil)
	descStart = prometheus.NewDesc("usrsvc_program_start_time_seconds",
		"Start time of the program's running process, in seconds since the Unix epoch.", programLabels, nil)
	descCPU = prometheus.NewDesc("usrsvc_program_cpu_seconds_total",
		"User and system CPU time used by the program's running process, in seconds.", programLabels, nil)
	descRSS = prometheus.NewDesc("usrsvc_program_resident_memory_bytes",
		"Resident memory of the program's running process (shared pages included), in bytes.", programLabels, nil)
	descPrivate = prometheus.NewDesc("usrsvc_program_private_memory_bytes",
		"Private resident memory of the program's running process (Private_Clean + Private_Dirty, what rss_limit measures), in bytes.",
		programLabels, nil)

	descHealthy = prometheus.NewDesc("usrsvc_program_healthy",
		"1 when the program's health checks pass, 0 when it is unhealthy (check_failures failed in a row); absent without health checks, before the first check of its process, or without usrsvcd.",
		programLabels, nil)
	checkLabels       = []string{"program", "check"}
	descCheckFailures = prometheus.NewDesc("usrsvc_health_check_failures_total",
		"Failed runs of the program's health check (http_check, tcp_check, exec_check), counted by usrsvcd since it began watching the program's process.",
		checkLabels, nil)
	descCheckDuration = prometheus.NewDesc("usrsvc_health_check_duration_seconds",
		"How long the program's health check (http_check, tcp_check, exec_check) took, failed or not, since usrsvcd began watching the program's process.",
		checkLabels, nil)

	descDaemonUp = prometheus.NewDesc("usrsvc_daemon_up",
		"1 when usrsvcd supervises this account's programs, else 0.", nil, nil)
	descDaemonStart = prometheus.NewDesc("usrsvc_daemon_start_time_seconds",
		"Start time of usrsvcd, in seconds since the Unix epoch.", nil, nil)
	descReread = prometheus.NewDesc("usrsvc_daemon_last_reread_success",
		"1 when usrsvcd's last reread of its configuration succeeded, 0 when it failed and usrsvcd kept its old configuration.",
		nil, nil)
	descRereadTime = prometheus.NewDesc("usrsvc_daemon_last_reread_timestamp_seconds",
		"Time of usrsvcd's last reread, in seconds since the Unix epoch.", nil, nil)
)

// collector turns a reading of every program into metrics at each scrape.
// maxAge is how old a reading it may use: 0 (a scrape reads anew) but in
// benchmarks of the encoding alone.
type collector struct {
	h      *Handler
	maxAge time.Duration
}

// Describe sends every descriptor.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descEnabled, descRestarts, descLastExit,
		descStart, descCPU, descRSS, descPrivate, descHealthy, descCheckFailures, descCheckDuration,
		descDaemonUp, descDaemonStart, descReread, descRereadTime} {
		ch <- d
	}
}

// Collect reads every program's status and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.h.ctx, scrapeTimeout)
	defer cancel()
	o := c.h.reader.read(ctx, c.maxAge)
	cfg := c.h.config()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, p := range o.Programs {
		gauge(descUp, b2f(p.Running), p.Name)
		gauge(descState, 1, p.Name, p.State)
		gauge(descEnabled, b2f(p.Enabled), p.Name)
		counter(descRestarts, float64(p.Restarts), p.Name)
		if p.LastExit != nil {
			gauge(descLastExit, float64(p.LastExit.code), p.Name)
		}
		switch p.Health {
		case healthHealthy:
			gauge(descHealthy, 1, p.Name)
		case healthUnhealthy:
			gauge(descHealthy, 0, p.Name)
		}
		c.checks(ch, cfg, p.Name)
		if !p.Running {
			continue
		}
		if p.Started != 0 {
			gauge(descStart, float64(p.Started), p.Name)
		}
		if p.CPUSeconds != nil {
			counter(descCPU, *p.CPUSeconds, p.Name)
		}
		if p.RSSBytes > 0 {
			gauge(descRSS, float64(p.RSSBytes), p.Name)
		}
		if p.PrivateBytes > 0 {
			gauge(descPrivate, float64(p.PrivateBytes), p.Name)
		}
	}
	d := o.Daemon
	gauge(descDaemonUp, b2f(d.Running))
	if d.Running && d.Started != 0 {
		gauge(descDaemonStart, float64(d.Started))
	}
	if rr := d.LastReread; rr != nil && rr.Unix != 0 {
		gauge(descReread, b2f(rr.OK))
		gauge(descRereadTime, float64(rr.Unix))
	}
}

// checks sends the counters of the program's health checks, as usrsvcd
// last recorded them (at most 30 s old; at once when its health changes).
// Only the checks the program has are sent.
func (c *collector) checks(ch chan<- prometheus.Metric, cfg *usrsvc.Config, name string) {
	pc := cfg.Program(name)
	if pc == nil || pc.HTTPCheck == "" && pc.TCPCheck == "" && pc.ExecCheck == "" {
		return
	}
	rec, err := statedir.Dir(cfg.StateDir).Record(name)
	if err != nil || rec == nil {
		return
	}
	configured := map[string]bool{"http_check": pc.HTTPCheck != "", "tcp_check": pc.TCPCheck != "", "exec_check": pc.ExecCheck != ""}
	for _, check := range slices.Sorted(maps.Keys(rec.Checks)) {
		st := rec.Checks[check]
		if st == nil || !configured[check] {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCheckFailures, prometheus.CounterValue, float64(st.Failures), name, check)
		// The record's buckets are cumulative, as Prometheus's are; +Inf
		// is the count, runs. A record without them (another layout)
		// gives only the count and the sum.
		buckets := make(map[float64]uint64, len(statedir.CheckBuckets))
		if len(st.Buckets) == len(statedir.CheckBuckets) {
			for i, le := range statedir.CheckBuckets {
				buckets[le] = st.Buckets[i]
			}
		}
		ch <- prometheus.MustNewConstHistogram(descCheckDuration, st.Runs, st.Seconds, buckets, name, check)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// promLogger sends promhttp's errors to the handler's log.
type promLogger struct{ h *Handler }

func (l promLogger) Println(v ...any) {
	l.h.log.Warn("metrics", "error", v)
}
