package usrsvc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The monitor tests run helper processes (internal/testproc). They hook in
// with an init function rather than a TestMain, so that they coexist with the
// package's TestMain wherever it is defined: in a helper process, init runs
// the helper's behaviour and exits before any TestMain; otherwise it returns
// at once, and calling testproc.Main again from a TestMain is harmless.
func init() { testproc.Main() }

// liveProcess describes the running process pid as the Manager would.
func liveProcess(t testing.TB, pid int) Process {
	t.Helper()
	pp, err := proc.Default().Process(pid)
	require.NoError(t, err)
	return Process{PID: pid, StartTicks: pp.StartTicks, Started: pp.Started, Title: pp.Title, Args: pp.Args}
}

func TestMonitorConfig(t *testing.T) {
	t.Parallel()
	fs := proc.FS{Root: "/fixture"}
	assert.Empty(t, configMonitors(nil, fs, nil))
	assert.Empty(t, configMonitors(&Program{Name: "x"}, fs, nil))

	pc := &Program{Name: "web", ActivityFile: "/home/u/alive", ActivityFileLimit: time.Minute, RSSLimitKB: 30000}
	mons := configMonitors(pc, fs, nil)
	require.Len(t, mons, 2)
	assert.Equal(t, activityFile{Path: "/home/u/alive", Limit: time.Minute}, mons[0])
	assert.Equal(t, &rssLimit{LimitKB: 30000, fs: fs}, mons[1])

	pc.ActivityFile = ""
	mons = configMonitors(pc, fs, nil)
	require.Len(t, mons, 1)
	assert.Equal(t, "rss_limit", mons[0].Name())

	pc.ActivityFile, pc.ActivityFileLimit, pc.RSSLimitKB = "/d", time.Second, 0
	mons = configMonitors(pc, fs, nil)
	require.Len(t, mons, 1)
	assert.Equal(t, "activityfile", mons[0].Name())
}

// BenchmarkMonitorPass measures one monitoring pass of 200 programs: the
// ActivityFile and RSSLimit monitors of each, checked in turn. Every program
// is a helper holding 5 MiB of touched private memory. Two cases:
//
//   - under-limit: rss_limit 1 GiB, far above every program (the usual
//     case): RSSLimit reads /proc/PID/stat only;
//   - near-limit: rss_limit just above each program's resident set, within
//     the counters' slack: RSSLimit also walks /proc/PID/smaps_rollup.
//
// Run it alone (it starts 200 processes):
//
//	go test -run '^$' -bench MonitorPass -benchtime 200x .
func BenchmarkMonitorPass(b *testing.B) {
	const programs = 200
	dir := b.TempDir()
	helpers := make([]*testproc.Helper, programs)
	for i := range helpers {
		helpers[i] = testproc.New(b, "grow-rss", "5")
		helpers[i].Start(b)
	}
	type program struct {
		p     Process
		alive string
		rssKB int64
	}
	progs := make([]program, programs)
	fs := proc.Default()
	for i, h := range helpers {
		pid := h.WaitReady(b, time.Minute)
		alive := filepath.Join(dir, fmt.Sprintf("p%03d.alive", i))
		require.NoError(b, os.WriteFile(alive, nil, 0o600))
		st, err := fs.Stat(pid)
		require.NoError(b, err)
		progs[i] = program{p: liveProcess(b, pid), alive: alive, rssKB: st.RSSPages * int64(os.Getpagesize()) >> 10}
	}
	for _, bc := range []struct {
		name  string
		limit func(rssKB int64) int64
	}{
		{"under-limit", func(int64) int64 { return 1 << 20 }},
		{"near-limit", func(rssKB int64) int64 { return rssKB + 4<<10 }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mons := make([][]Monitor, programs)
			for i, pr := range progs {
				pc := &Program{Name: fmt.Sprintf("p%03d", i),
					ActivityFile: pr.alive, ActivityFileLimit: time.Hour, RSSLimitKB: bc.limit(pr.rssKB)}
				mons[i] = configMonitors(pc, fs, nil)
				require.Len(b, mons[i], 2)
			}
			ctx := context.Background()
			for b.Loop() {
				for i, pr := range progs {
					for _, m := range mons[i] {
						if err := m.Check(ctx, pr.p); err != nil {
							b.Fatalf("%s: %v", m.Name(), err)
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/pass")
		})
	}
}

type panickyMonitor struct{}

func (panickyMonitor) Name() string                         { return "panicky" }
func (panickyMonitor) Check(context.Context, Process) error { panic("bug in the monitor: 42") }

// A monitor's panic is its own failure: logged with its value and stack,
// reported as monitor-error, never a restart.
func TestMonitorPanicLogged(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmdline, _ := uniqueSleep(t)
	e.addProgram("web", cmdline, "[[Monitor]]", "monitor_after = 0", "monitor_interval = 0.1")
	var logs testproc.Buffer
	var evs events
	m := e.manager(recorder(&evs), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	_, err := m.AddMonitor("web", panickyMonitor{})
	require.NoError(t, err)
	runLoop(t, m)
	errs := evs.wait(t, EventMonitorError, "web", 2)
	assert.Contains(t, errs[0].Reason, "monitor panicked: bug in the monitor: 42")
	assert.Empty(t, evs.list(EventMonitorFailed, "web"))
	assert.Len(t, evs.list(EventStarted, "web"), 1, "never restarted for its monitor's panic")
	assert.Contains(t, logs.String(), "monitor panicky panicked checking pid")
	assert.Contains(t, logs.String(), "panickyMonitor.Check", "the stack is logged")
}
