package usrsvc

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The benchmarks below start 200 real detached processes. They only run
// under -bench (Go never runs benchmarks otherwise); benchProcsOnly skips
// them in the odd case where something calls them without it, and under
// -short.
//
//	go test -run xxx -bench 'StatusAll200|StartAll200' -benchtime 5x .
func benchProcsOnly(b *testing.B) {
	b.Helper()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" || testing.Short() {
		b.Skip("starts 200 processes: only with -bench and without -short")
	}
}

const benchPrograms = 200

// benchEnv configures n /bin/sleep programs with unique titles
// ("/bin/sleep 86400.<run><i>") and registers a cleanup that stops them all
// through the Manager, then kills by pid anything still titled with the run.
func benchEnv(b *testing.B, n int, extra ...string) (*testEnv, *Manager, context.Context) {
	b.Helper()
	e := newTestEnv(b)
	run := fmt.Sprintf("%05d", rand.IntN(100000))
	for i := 1; i <= n; i++ {
		e.addProgram(fmt.Sprintf("p%03d", i), fmt.Sprintf("/bin/sleep 86400.%s%03d", run, i), extra...)
	}
	m := e.manager()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(func() {
		defer cancel()
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		m.DoAll(sctx, ActionStop, nil, true)
		testproc.KillToken("sleep 86400." + run) // by pid, through a pidfd
	})
	return e, m, ctx
}

func checkAll(b *testing.B, rs []Result, n int, running bool) {
	b.Helper()
	if len(rs) != n {
		b.Fatalf("%d results, want %d", len(rs), n)
	}
	for _, r := range rs {
		if r.Err != nil {
			b.Fatalf("%s %s: %v", r.Action, r.Program, r.Err)
		}
		if r.Status == nil || r.Status.Running != running {
			b.Fatalf("%s %s: running = %v, want %v", r.Action, r.Program, r.Status != nil && r.Status.Running, running)
		}
	}
}

// BenchmarkStatusAll200: one op is StatusAll of 200 running programs (one
// /proc snapshot, then a pidfile check per program).
func BenchmarkStatusAll200(b *testing.B) {
	benchProcsOnly(b)
	_, m, ctx := benchEnv(b, benchPrograms, "success_seconds = 1")
	checkAll(b, m.DoAll(ctx, ActionStart, nil, true), benchPrograms, true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rs := m.DoAll(ctx, ActionStatus, nil, false)
		if len(rs) != benchPrograms {
			b.Fatalf("%d results", len(rs))
		}
	}
	b.StopTimer()
	checkAll(b, m.DoAll(ctx, ActionStatus, nil, false), benchPrograms, true)
}

// BenchmarkStartAll200Parallel: one op is StartAll(Parallel) of 200 stopped
// programs with success_seconds = 1 (so ≥ 1 s an op); StopAll runs outside
// the timer.
func BenchmarkStartAll200Parallel(b *testing.B) {
	benchProcsOnly(b)
	_, m, ctx := benchEnv(b, benchPrograms, "success_seconds = 1")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs := m.DoAll(ctx, ActionStart, nil, true)
		b.StopTimer()
		checkAll(b, rs, benchPrograms, true)
		checkAll(b, m.DoAll(ctx, ActionStop, nil, true), benchPrograms, false)
		b.StartTimer()
	}
}
