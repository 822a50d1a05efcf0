package launch

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// BenchmarkRunTrue: one job (/bin/true) run in this process, from the fork
// of its intermediate to the end of its tree.
func BenchmarkRunTrue(b *testing.B) {
	launcherPid = uintptr(os.Getpid())
	job := &Job{Path: "/bin/true", Argv: []string{"/bin/true"}, Env: []string{"PATH=/bin"}, Dir: "/",
		Stdout: os.DevNull, Stderr: os.DevNull, Window: 10 * time.Second, TitleRE: "x"}
	cpu := cpuNow()
	for b.Loop() {
		if r := job.run(nil, nil); r.Outcome != Exited {
			b.Fatalf("%+v", r)
		}
	}
	b.ReportMetric(float64(cpuNow()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkExecTrue(b *testing.B) {
	cpu := cpuNow()
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuNow()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
}
