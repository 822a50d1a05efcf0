package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// blockingAlerter counts alerts and holds each until its context is done.
type blockingAlerter struct{ calls atomic.Int32 }

func (a *blockingAlerter) Alert(ctx context.Context, ev Event) error {
	a.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// failingMonitor always asks for a restart.
type failingMonitor struct{}

func (failingMonitor) Name() string { return "always-fails" }
func (failingMonitor) Check(context.Context, Process) error {
	return errors.New("unhealthy on purpose")
}

// loopGoroutines lists the goroutines running code of Run or of a launch
// (a Spawn, or the reader of a launcher's results).
func loopGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "usrsvc.(*loop)") || strings.Contains(g, "usrsvc/internal/launch.") {
			found = append(found, g)
		}
	}
	return found
}

// TestRunLeavesNothingBehind: Run with 50 programs, cancelled while 20
// starts are in their success window, 20 stops wait for programs that
// ignore SIGTERM (a monitor restart each), and 20 alerts are being sent,
// returns with no goroutine of its own left and makes no OnEvent call
// afterwards. Not parallel: goleak looks at the whole process.
func TestRunLeavesNothingBehind(t *testing.T) {
	e := newTestEnv(t)
	const slow, stubborn, steady = 20, 20, 10
	for i := range slow {
		cmdline, _ := uniqueSleep(t)
		e.addProgram(fmt.Sprintf("slow%02d", i), cmdline, "success_seconds = 60")
	}
	for i := range stubborn {
		cmdline, _ := uniqueSleep(t)
		e.addProgram(fmt.Sprintf("stubborn%02d", i), "trap '' TERM; exec "+cmdline, "useshell = true",
			"term_to_kill_seconds = 60", "[[Monitor]]", "monitor_after = 0", "monitor_interval = 0.1")
	}
	for i := range steady {
		cmdline, _ := uniqueSleep(t)
		e.addProgram(fmt.Sprintf("steady%02d", i), cmdline)
	}
	alerter := &blockingAlerter{}
	var returned atomic.Bool
	var late atomic.Int32
	m := e.manager(func(o *Options) {
		o.Alerter = alerter
		o.OnEvent = func(Event) {
			if returned.Load() {
				late.Add(1)
			}
		}
	})
	for i := range stubborn {
		_, err := m.AddMonitor(fmt.Sprintf("stubborn%02d", i), failingMonitor{})
		require.NoError(t, err)
	}

	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	sd := m.state()
	state := func(name string) State {
		rec, err := sd.Record(name)
		if err != nil || rec == nil {
			return ""
		}
		return State(rec.State)
	}
	waitFor(t, 120*time.Second, func() bool {
		if alerter.calls.Load() < stubborn {
			return false
		}
		for i := range slow {
			if state(fmt.Sprintf("slow%02d", i)) != StateStarting {
				return false
			}
		}
		for i := range steady {
			if state(fmt.Sprintf("steady%02d", i)) != StateRunning {
				return false
			}
		}
		return true
	}, "every start in its window, every monitor restart under way, every alert being sent")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of its cancellation")
	}
	returned.Store(true)
	// A goroutine that has called its deferred wg.Done may not have
	// returned yet when Run does (it has nothing left to do but return):
	// give those a moment; one still blocked on something stays listed.
	left := loopGoroutines()
	for deadline := time.Now().Add(2 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = loopGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, left, "no goroutine of Run or of a launch is left when Run returns")
	goleak.VerifyNone(t, ignore)
	assert.Zero(t, late.Load(), "no OnEvent call after Run returned")
}
