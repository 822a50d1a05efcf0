// Command e2e measures usrsvc and usrsvcd end to end with the real binaries
// (bench/e2e.sh builds them and runs it), and offers small helper modes that
// bench/compare.sh uses against supervisord and monit:
//
//	e2e -bin DIR -dir WORLD -run ID [-n 200] [-idle 60s] [-kills 10]   the e2e table
//	e2e -subreaper -- CMD ARGS...   become a child subreaper, run CMD, reap everything at once
//	e2e -observe TITLE [-kills 10]  kill -9 the process titled TITLE, time until a new one runs
//	e2e -cpu PID [-dur 30s]         CPU time of PID (all threads) over a window
//	e2e -time N -- CMD ARGS...      median/min/max wall time of CMD over N runs
//	e2e -waitfor TOKEN -count N -- CMD ARGS...  run CMD, then wait for N live processes titled *TOKEN*
//	e2e -pids TOKEN                 "title<TAB>pid" of our live processes titled *TOKEN*
//	e2e -diffpids FILE -token TOKEN compare with an earlier -pids listing (restarted, duplicates)
//	e2e -cleanup TOKEN[,TOKEN...]   SIGKILL (by pid, through a pidfd) our processes titled *TOKEN*
//
// and the floors and figures of bench/scale.sh:
//
//	e2e -spawn FILE [-repeat R] [-cg]  a shell starting FILE's command lines bare: time until all exec'd
//	e2e -masskill FILE [-timeout 120s] SIGKILL every process titled as a line of FILE at once; time until all are back
//	e2e -reread PID -ack FILE [-repeat 10]  SIGUSR1 → acknowledged reread (generation in FILE grows)
//	e2e -mem PID                    RssAnon, PSS, VmRSS and its parts, threads
//	e2e -schedsum TOKEN             CPU time used so far by our processes titled *TOKEN*
//	e2e -time N -cg [-progs TOKEN] -- CMD  also the CPU of CMD and all it starts (a cgroup), and of the programs
//	e2e -cgnew | -cgread DIR | -cgdel DIR | -joincg DIR -- CMD   CPU accounting groups (cgroup.go)
//
// and the helpers of bench/health.sh (health.go):
//
//	e2e -httpserve HOST:PORT [-ports N] [-token T]  answer 200 "ok" on N ports (PORT 0: the kernel's
//	                                choice), count requests and connections (GET /count), until SIGTERM
//	e2e -freeport                   a TCP port of 127.0.0.1 nothing listens on
//	e2e -hang TITLE -url URL [-repeat 5] [-gap 2s]  SIGSTOP the process titled TITLE; time until a new one runs
//
// Every process it starts is stopped at the end, even on failure or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

var (
	fBin        = flag.String("bin", "", "directory holding usrsvc and usrsvcd")
	fDir        = flag.String("dir", "", "world directory (HOME of the run); created if missing")
	fRun        = flag.String("run", "", "run id (digits) making the program titles unique")
	fN          = flag.Int("n", 200, "programs in the large world")
	fIdle       = flag.Duration("idle", 60*time.Second, "idle CPU window")
	fKills      = flag.Int("kills", 10, "kill -9 repetitions")
	fRepeat     = flag.Int("repeat", 10, "repetitions of the timed commands")
	fSections   = flag.String("sections", "floors,start,status,rss,idle,reread,daemonkill,kill1,kill1sub", "sections to run")
	fSubreaper  = flag.Bool("subreaper", false, "helper: run the command after -- as a child subreaper")
	fObserve    = flag.String("observe", "", "helper: title of the process to kill and watch")
	fBeforeKill = flag.String("before-kill", "", "with -observe: a shell command run before each kill, outside the timing")
	fCPU        = flag.Int("cpu", 0, "helper: pid whose CPU time to measure")
	fDur        = flag.Duration("dur", 30*time.Second, "helper: -cpu window")
	fTime       = flag.Int("time", 0, "helper: run the command after -- this many times")
	fWaitFor    = flag.String("waitfor", "", "helper: title token to wait for after the command")
	fCount      = flag.Int("count", 0, "helper: -waitfor count")
	fTimeout    = flag.Duration("timeout", 120*time.Second, "helper: -waitfor timeout")
	fPids       = flag.String("pids", "", "helper: list our processes titled *TOKEN*")
	fDiffPids   = flag.String("diffpids", "", "helper: earlier -pids listing to compare with")
	fToken      = flag.String("token", "", "helper: title token for -diffpids (-httpserve: a mark in its title, unused)")
	fCleanup    = flag.String("cleanup", "", "helper: comma-separated title tokens to SIGKILL")
	fSpawn      = flag.String("spawn", "", "helper: file of command lines a shell starts bare (the spawn floor)")
	fCG         = flag.Bool("cg", false, "helper: measure CPU in a cgroup (-spawn, -time)")
	fProgs      = flag.String("progs", "", "helper: -time -cg: title token of the started programs, whose own CPU is reported apart")
	fMassKill   = flag.String("masskill", "", "helper: file of titles to kill at once and wait for")
	fReread     = flag.Int("reread", 0, "helper: usrsvcd pid to send SIGUSR1")
	fAck        = flag.String("ack", "", "helper: -reread acknowledgement file (usrsvcd.reload.json)")
	fMem        = flag.Int("mem", 0, "helper: pid whose memory to report")
	fSchedSum   = flag.String("schedsum", "", "helper: title token whose CPU to sum")
	fCgNew      = flag.Bool("cgnew", false, "helper: create a cgroup, print its path")
	fCgRead     = flag.String("cgread", "", "helper: print a cgroup's CPU time")
	fCgDel      = flag.String("cgdel", "", "helper: remove a cgroup (moving what is left out)")
	fJoinCg     = flag.String("joincg", "", "helper: join this cgroup, then exec the command after --")
	fHTTPServe  = flag.String("httpserve", "", "helper: HOST:PORT to answer health checks on (PORT 0: any)")
	fPorts      = flag.Int("ports", 1, "helper: -httpserve ports (PORT, PORT+1, ...)")
	fFreePort   = flag.Bool("freeport", false, "helper: print a free TCP port of 127.0.0.1")
	fHang       = flag.String("hang", "", "helper: title of the process to SIGSTOP and watch being restarted")
	fURL        = flag.String("url", "", "helper: -hang health URL the process answers before each stop")
	fGap        = flag.Duration("gap", 2*time.Second, "helper: -hang wait after the process answers, plus rand(0, gap)")
)

func main() {
	flag.Parse()
	var code int
	switch {
	case *fSubreaper:
		code = subreaperMain(flag.Args())
	case *fHTTPServe != "":
		if err := httpServe(*fHTTPServe, *fPorts); err != nil {
			fmt.Fprintln(os.Stderr, "httpserve:", err)
			code = 1
		}
	case *fFreePort:
		p, err := freePort()
		if err != nil {
			fmt.Fprintln(os.Stderr, "freeport:", err)
			code = 1
		}
		fmt.Println(p)
	case *fHang != "":
		repeat := 5
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "repeat" {
				repeat = max(1, *fRepeat)
			}
		})
		h, err := observeHangs(*fHang, *fURL, repeat, *fGap)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hang:", err)
			code = 1
		}
		fmt.Println(h.line())
	case *fObserve != "":
		var before func() error
		if *fBeforeKill != "" {
			before = func() error { return exec.Command("/bin/sh", "-c", *fBeforeKill).Run() }
		}
		r, err := observeKills(*fObserve, *fKills, before)
		if err != nil {
			fmt.Fprintln(os.Stderr, "observe:", err)
			code = 1
		}
		fmt.Println(r.line())
	case *fCPU != 0:
		c, err := measureCPU(*fCPU, *fDur)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cpu:", err)
			code = 1
		}
		fmt.Printf("CPU all_threads_ms=%.2f leader_ms=%.2f stat_ms=%d pct=%.4f wakeups=%d threads=%d dur=%v\n",
			ms(c.all), ms(c.leader), c.statTicks*10, c.pct(), c.switches, c.threads, c.dur)
	case *fJoinCg != "":
		err := cgJoinExec(*fJoinCg, flag.Args())
		fmt.Fprintln(os.Stderr, "joincg:", err)
		code = 1
	case *fCgNew:
		dir, err := cgNew()
		if err != nil {
			fmt.Fprintln(os.Stderr, "cgnew:", err)
			code = 1
		}
		fmt.Println(dir)
	case *fCgRead != "":
		d, err := cgCPU(*fCgRead)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cgread:", err)
			code = 1
		}
		fmt.Printf("CG cpu_ms=%.2f\n", ms(d))
	case *fCgDel != "":
		if err := cgDel(*fCgDel); err != nil {
			fmt.Fprintln(os.Stderr, "cgdel:", err)
			code = 1
		}
	case *fTime > 0:
		t, err := timeCmd(*fTime, *fCG, *fProgs, flag.Args()...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "time:", err)
			code = 1
		}
		fmt.Println(t.line())
	case *fSpawn != "":
		titles, err := readLines(*fSpawn)
		if err == nil && len(titles) == 0 {
			err = fmt.Errorf("%s: no command lines", *fSpawn)
		}
		// One run unless -repeat is given (its default is the timed
		// commands' 10).
		runs := 1
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "repeat" {
				runs = max(1, *fRepeat)
			}
		})
		var rs []spawnResult
		for i := 0; err == nil && i < runs; i++ {
			var r spawnResult
			r, err = spawnFloor(titles, *fCG)
			rs = append(rs, r)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "spawn:", err)
			code = 1
		}
		if len(rs) > 0 {
			fmt.Println(medianSpawn(rs).line())
		}
	case *fMassKill != "":
		titles, err := readLines(*fMassKill)
		var r massKill
		if err == nil {
			r, err = massKillTitles(titles, *fTimeout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "masskill:", err)
			code = 1
		}
		fmt.Println(r.line())
	case *fReread != 0:
		ds, err := rereads(*fReread, *fAck, *fRepeat)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reread:", err)
			code = 1
		}
		fmt.Println(durLine("REREAD", ds))
	case *fMem != 0:
		fmt.Println(memLine(*fMem))
	case *fSchedSum != "":
		d, n := schedSum(*fSchedSum)
		fmt.Printf("SCHED cpu_ms=%.2f procs=%d\n", ms(d), n)
	case *fWaitFor != "":
		total, cmdTime, err := waitFor(*fWaitFor, *fCount, *fTimeout, flag.Args()...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "waitfor:", err)
			code = 1
		}
		fmt.Printf("WAIT total_ms=%.0f cmd_ms=%.0f\n", ms(total), ms(cmdTime))
	case *fPids != "":
		for _, p := range scan(contains(*fPids)) {
			fmt.Printf("%s\t%d\n", p.title, p.pid)
		}
	case *fDiffPids != "":
		d, err := diffPids(*fDiffPids, *fToken)
		if err != nil {
			fmt.Fprintln(os.Stderr, "diffpids:", err)
			code = 1
		}
		fmt.Printf("DIFF programs=%d restarted=%d duplicates=%d missing=%d unchanged=%d\n", d.programs, d.restarted, d.duplicates, d.missing, d.unchanged)
	case *fCleanup != "":
		fmt.Printf("CLEANUP killed=%d\n", killTokens(strings.Split(*fCleanup, ",")))
	default:
		code = e2eMain()
	}
	os.Exit(code)
}
