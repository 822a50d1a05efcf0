package main

import (
	"encoding/binary"
	"errors"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/proc"
)

// execWatch tells when processes with given titles appear, without polling
// /proc: it listens to the kernel's process events (the proc connector,
// NETLINK_CONNECTOR, needs CAP_NET_ADMIN) and reads the title of each
// process that execs. Each arrival is stamped with the event's own
// CLOCK_MONOTONIC time. Where the connector is refused (not root), it falls
// back to a scan of /proc every 20 ms, stamped with the scan's time.
type execWatch struct {
	mu     sync.Mutex
	want   map[string]bool          // titles not seen yet
	seen   map[string]time.Duration // title → CLOCK_MONOTONIC of its exec
	ignore map[int]uint64           // processes that do not count (the killed ones): pid → start ticks
	// marker is a title whose exec is only timed (markerAt), not waited for.
	marker   string
	markerAt time.Duration
	swept    int // titles found by sweep, not by an event
	changed  chan struct{}
	fd       int // -1: polling
	method   string
	stop     chan struct{}
	done     chan struct{}
}

func monoNow() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// newExecWatch starts watching for titles; the processes in ignore (pid →
// start time in clock ticks: pids wrap, and a new process may get a killed
// one's pid) never count. The
// exec of marker, when not "", is timed too (see markerTime).
func newExecWatch(titles []string, ignore map[int]uint64, marker string) *execWatch {
	w := &execWatch{want: map[string]bool{}, seen: map[string]time.Duration{}, ignore: ignore, marker: marker,
		changed: make(chan struct{}, 1), fd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	for _, t := range titles {
		w.want[t] = true
	}
	if fd, err := procConnector(); err == nil {
		w.fd, w.method = fd, "proc connector exec events"
		go w.listen()
	} else {
		w.method = "/proc scan every 20 ms (proc connector: " + err.Error() + ")"
		go w.poll()
	}
	return w
}

// procConnector subscribes to the kernel's process events.
func procConnector() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return -1, err
	}
	const cnIdxProc, cnValProc, procCnMcastListen = 1, 1, 1
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc, Pid: uint32(os.Getpid())}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// Thousands of execs at once must not overflow the socket.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<20)
	}
	// nlmsghdr (16) + cn_msg (20) + enum proc_cn_mcast_op (4)
	msg := make([]byte, 40)
	binary.NativeEndian.PutUint32(msg[0:], 40)
	binary.NativeEndian.PutUint16(msg[4:], unix.NLMSG_DONE)
	binary.NativeEndian.PutUint32(msg[12:], uint32(os.Getpid()))
	binary.NativeEndian.PutUint32(msg[16:], cnIdxProc)
	binary.NativeEndian.PutUint32(msg[20:], cnValProc)
	binary.NativeEndian.PutUint16(msg[32:], 4)
	binary.NativeEndian.PutUint32(msg[36:], procCnMcastListen)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// A receive timeout lets the listener notice stop.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	return fd, nil
}

func (w *execWatch) listen() {
	defer close(w.done)
	defer unix.Close(w.fd)
	buf := make([]byte, 1<<16)
	const procEventExec = 0x2
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if errors.Is(err, unix.ENOBUFS) {
			w.rescan() // events lost: look at /proc once
			continue
		}
		if err != nil {
			continue // timeout or EINTR
		}
		for off := 0; off+16 <= n; {
			l := int(binary.NativeEndian.Uint32(buf[off:]))
			if l < 16 || off+l > n {
				break
			}
			m := buf[off : off+l]
			off += (l + 3) &^ 3
			// cn_msg at 16, proc_event at 36: what, cpu, timestamp_ns, data.
			if len(m) < 60 || binary.NativeEndian.Uint32(m[36:]) != procEventExec {
				continue
			}
			ts := time.Duration(binary.NativeEndian.Uint64(m[44:]))
			tgid := int(binary.NativeEndian.Uint32(m[56:]))
			w.check(tgid, ts)
		}
	}
}

// check reads pid's title and records it when it is one we wait for.
func (w *execWatch) check(pid int, ts time.Duration) {
	if w.ignored(pid, 0) {
		return
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return
	}
	title := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	w.mu.Lock()
	defer w.mu.Unlock()
	if title == w.marker && w.markerAt == 0 {
		w.markerAt = ts
	}
	if w.want[title] {
		delete(w.want, title)
		w.seen[title] = ts
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

func (w *execWatch) rescan() {
	now := monoNow()
	w.mu.Lock()
	want := w.want
	w.mu.Unlock()
	for _, p := range scan(func(t string) bool { return want[t] }) {
		w.check(p.pid, now)
	}
}

func (w *execWatch) poll() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		w.mu.Lock()
		left := len(w.want)
		w.mu.Unlock()
		if left > 0 {
			w.rescan()
		}
	}
}

// wait blocks until every title was seen or the timeout; it returns the
// exec times seen and how many are missing.
//
// A title still missing after a second without news is looked for in /proc
// (the connector can drop events without saying so when thousands come at
// once): one found there is stamped with its own start time (clock-tick
// resolution) and counted in swept.
func (w *execWatch) wait(timeout time.Duration) (map[string]time.Duration, int) {
	deadline := time.After(timeout)
	quiet := time.NewTicker(time.Second)
	defer quiet.Stop()
	for {
		w.mu.Lock()
		left := len(w.want)
		w.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-w.changed:
			quiet.Reset(time.Second)
		case <-quiet.C:
			w.sweep()
		case <-deadline:
			w.close()
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.seen, len(w.want)
		}
	}
	w.close()
	return w.seen, 0
}

// sweep finds in /proc the titles still missing, each stamped with its
// process's start time.
func (w *execWatch) sweep() {
	w.mu.Lock()
	want := maps.Clone(w.want)
	w.mu.Unlock()
	if len(want) == 0 {
		return
	}
	mono, boot := monoNow(), proc.Uptime()
	for _, p := range scan(func(t string) bool { return want[t] }) {
		if w.ignored(p.pid, p.start) {
			continue
		}
		ts := mono - (boot - proc.StartUptime(p.start))
		w.mu.Lock()
		if w.want[p.title] {
			delete(w.want, p.title)
			w.seen[p.title] = ts
			w.swept++
		}
		w.mu.Unlock()
	}
}

func (w *execWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// markerTime is when the marker title exec'd; 0 when not seen (polling
// misses a short-lived one).
func (w *execWatch) markerTime() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.markerAt
}

// sweptCount is how many titles sweep found.
func (w *execWatch) sweptCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.swept
}

// ignored reports whether pid is one of the processes to ignore: its pid
// and its start time (start, or read now when 0) are those of one of them.
func (w *execWatch) ignored(pid int, start uint64) bool {
	want, ok := w.ignore[pid]
	if !ok {
		return false
	}
	if start == 0 {
		p, err := proc.Default().Stat(pid)
		if err != nil {
			return true // gone: nothing to count
		}
		start = p.StartTicks
	}
	return start == want
}
