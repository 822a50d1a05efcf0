package launch

import (
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fullJob() *Job {
	return &Job{Path: "/bin/sh", Argv: []string{"sh", "-c", "exec sleep 1 # ünïcode \x01"},
		Env: []string{"A=1", "EMPTY=", "PATH=/usr/bin:/bin"}, Dir: "/tmp/x y", Stdout: "/tmp/out", Stderr: "/tmp/err",
		Window: 1500 * time.Millisecond, Pidfile: "/tmp/p.pid", AutoPid: true, TitleRE: `^sleep \d+$|\x00`,
		ShellArgv: []string{"sh", "-c", "x"}, TermToKill: -3 * time.Second, Probe: true,
		SetUmask: true, Umask: 0o27, Limits: []Limit{{Resource: 7, Soft: 100, Hard: 1<<64 - 1}, {Resource: 4}}, AwaitReady: true}
}

func fullResult() *Result {
	ws := syscall.WaitStatus(0x8b00)
	started := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	return &Result{Outcome: NoMatch, Err: "e", Errno: syscall.EMFILE,
		Process: &Process{PID: 1 << 30, StartTicks: 1<<63 + 5, Started: started, Executable: "/bin/x", Title: "x -y", Args: []string{"x", "-y"}},
		Wait:    &ws, ExitTime: started.Add(time.Second), Elapsed: 42 * time.Millisecond,
		Stderr: []string{"line 1", ""}, Seen: []string{"[1] a"}, OtherRoots: []string{"[2] b", "[3] c"},
		PidfileErr: "p", SubreaperErr: "s", Stage: StageLimit, Note: "n"}
}

// The round trips below set every field of Job, Result and Process, so a
// field added to them without its encoding fails them: this test fails
// first if the new field is not set here.
func TestCodecCoversEveryField(t *testing.T) {
	t.Parallel()
	for _, v := range []any{*fullJob(), *fullResult(), *fullResult().Process} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			assert.False(t, rv.Field(i).IsZero(), "%s.%s is not set in the round-trip test: set it, and encode it in codec.go",
				rv.Type().Name(), rv.Type().Field(i).Name)
		}
	}
}

func TestJobCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, job := range []*Job{fullJob(), {Probe: true}, {}} {
		var got Job
		require.NoError(t, decodeJob(encodeJob(job), &got))
		assert.Equal(t, *job, got)
	}
}

func TestResultCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []*Result{fullResult(), {Outcome: Probed}, {}} {
		var got Result
		require.NoError(t, decodeResult(encodeResult(r), &got))
		// Times come back as the same instant in the local zone.
		if r.Process != nil {
			assert.True(t, r.Process.Started.Equal(got.Process.Started))
			p := *got.Process
			p.Started = r.Process.Started
			got.Process = &p
		}
		assert.True(t, r.ExitTime.Equal(got.ExitTime))
		got.ExitTime = r.ExitTime
		assert.True(t, reflect.DeepEqual(*r, got), "%+v\n%+v", *r, got)
	}
}

func TestCodecRejectsMalformed(t *testing.T) {
	t.Parallel()
	job, res := encodeJob(fullJob()), encodeResult(&Result{Outcome: Started, Process: &Process{Args: []string{"a"}}})
	for n := 1; n < len(job); n++ {
		assert.Error(t, decodeJob(job[:n], new(Job)), "job cut at %d", n)
	}
	for n := 1; n < len(res); n++ {
		assert.Error(t, decodeResult(res[:n], new(Result)), "result cut at %d", n)
	}
	assert.Error(t, decodeJob(append(job, 0), new(Job)), "trailing byte")
	assert.Error(t, decodeResult(append(res, 0), new(Result)), "trailing byte")
	// A huge count is refused before anything is allocated for it.
	assert.Error(t, decodeJob([]byte{jobMagic, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, new(Job)))
	// A boolean is 0 or 1.
	assert.Error(t, decodeJob([]byte{jobMagic, 2}, new(Job)))
}

func FuzzDecode(f *testing.F) {
	f.Add(encodeJob(fullJob()))
	f.Add(encodeResult(&Result{Outcome: Started, Process: &Process{PID: 3}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append([]byte{0}, data...)
		var job Job
		if decodeJob(data, &job) == nil {
			var again Job
			require.NoError(t, decodeJob(encodeJob(&job), &again))
		}
		decodeResult(data, new(Result))
	})
}
