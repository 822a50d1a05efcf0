package web

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/usrsvc/usrsvc/internal/inotify"
	"github.com/usrsvc/usrsvc/internal/proc"
	"golang.org/x/sys/unix"
)

// The live updates. One watcher serves every connected page: it reads the
// programs' status when something changes and sends each client what
// changed. It runs only while a client is connected: with none, nothing
// is read, watched or polled.
//
// What wakes it:
//   - inotify on the state directory: usrsvcd's record of a program
//     (programs/NAME.daemon.json: started, exited, restarting, gave up),
//     a manual start or stop by usrsvc (programs/NAME.manual.json), and
//     usrsvcd's reread acknowledgement (usrsvcd.reload.json);
//   - a pidfd on each running program and on usrsvcd: an exit is seen at
//     once, with or without usrsvcd;
//   - an action through this server, when it ends;
//   - a tick (usageInterval), for CPU and memory, which change without
//     any event.

// State directory files the watcher reacts to.
const (
	reloadAckFile  = "usrsvcd.reload.json"
	programsSubdir = "programs"
	recordSuffix   = ".json" // NAME.daemon.json, NAME.manual.json
)

// Watcher timing.
const (
	// usageInterval is how often CPU and memory are read again while a
	// client watches.
	usageInterval = 3 * time.Second
	// settle batches the events of one change (a record written, then a
	// pidfd, then another record) into one reading.
	settle = 30 * time.Millisecond
	// minGap bounds the readings to 5 a second during a restart storm.
	minGap = 200 * time.Millisecond
)

// clientBuffer is how many events a client may lag behind before it is
// dropped (its browser reconnects and gets a fresh snapshot).
const clientBuffer = 256

// sseEvent is one server-sent event: its name, its JSON data, and an id
// ("" for none) that a reconnecting browser sends back in Last-Event-ID.
type sseEvent struct {
	name string
	data []byte
	id   string
}

// client is one connected page.
type client struct {
	ch chan sseEvent
	// dropped is closed when the client lagged too far behind.
	dropped  chan struct{}
	snapshot bool // needs the whole state first
}

// hub is the one watcher and its clients.
type hub struct {
	h *Handler
	// interval is usageInterval (tests shorten it).
	interval time.Duration

	mu      sync.Mutex
	clients map[*client]struct{}
	stop    context.CancelFunc // stops the watch loop; nil while none runs
	loopWG  sync.WaitGroup
	poke    chan struct{}
	// sent is the JSON last sent for each program, and for the daemon
	// under daemonKey, without the fields that change every second.
	sent map[string][]byte
	// readings counts the readings made by the watch loop (tests).
	readings int
	// pids is the running loop's pidfd set (tests look at it).
	pids *pidWatch
}

const daemonKey = "\x00daemon"

func newHub(h *Handler) *hub {
	return &hub{h: h, interval: usageInterval,
		clients: map[*client]struct{}{}, poke: make(chan struct{}, 1)}
}

// subscribe adds a client, starting the watcher for the first one. The
// client receives the whole state first, then what changes.
func (hb *hub) subscribe() *client {
	c := &client{ch: make(chan sseEvent, clientBuffer), dropped: make(chan struct{}), snapshot: true}
	hb.mu.Lock()
	hb.clients[c] = struct{}{}
	if hb.stop == nil {
		ctx, cancel := context.WithCancel(hb.h.ctx)
		hb.stop = cancel
		hb.sent = map[string][]byte{}
		hb.loopWG.Add(1)
		go func() {
			defer hb.loopWG.Done()
			hb.run(ctx)
		}()
	}
	hb.mu.Unlock()
	hb.trigger()
	return c
}

// unsubscribe removes a client, stopping the watcher after the last one.
func (hb *hub) unsubscribe(c *client) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	delete(hb.clients, c)
	if len(hb.clients) == 0 && hb.stop != nil {
		hb.stop()
		hb.stop = nil
	}
}

// watching reports whether the watcher runs (tests).
func (hb *hub) watching() bool {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.stop != nil
}

// readingCount is the number of readings the watcher made (tests).
func (hb *hub) readingCount() int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return hb.readings
}

// watched reports whether the watcher holds a pidfd on pid (tests).
func (hb *hub) watched(pid int) bool {
	hb.mu.Lock()
	pw := hb.pids
	hb.mu.Unlock()
	if pw == nil {
		return false
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for k := range pw.byProc {
		if k.pid == pid {
			return true
		}
	}
	return false
}

// trigger asks the watcher, if it runs, to read again soon.
func (hb *hub) trigger() {
	select {
	case hb.poke <- struct{}{}:
	default:
	}
}

// run is the watch loop: it reads and publishes on every trigger until ctx
// ends.
func (hb *hub) run(ctx context.Context) {
	pids := newPidWatch(ctx, hb.trigger)
	hb.mu.Lock()
	hb.pids = pids
	hb.mu.Unlock()
	defer pids.closeAll()
	if w := hb.watchState(); w != nil {
		defer w.Close()
	}
	tick := time.NewTicker(hb.interval)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.poke:
		case <-tick.C:
		}
		wait := settle
		if gap := minGap - time.Since(last); gap > wait {
			wait = gap
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		select { // what came during the wait is in this reading
		case <-hb.poke:
		default:
		}
		last = time.Now()
		o := hb.h.reader.read(ctx, 0)
		if ctx.Err() != nil {
			return
		}
		hb.publish(o)
		pids.update(o, hb.h.reader.fs)
	}
}

// watchState starts the inotify watch of the state directory, which pokes
// the loop when a record changes; nil when it cannot (the tick still
// catches changes).
func (hb *hub) watchState() *inotify.Watcher {
	sd := hb.h.config().StateDir
	progs := filepath.Join(sd, programsSubdir)
	// The state directory may not exist before the first operation:
	// create it as usrsvc does (0700), so that it can be watched.
	if err := os.MkdirAll(progs, 0o700); err != nil {
		hb.h.log.Warn("live updates: cannot create the state directory; changes are seen every "+hb.interval.String(), "error", err)
		return nil
	}
	w, err := inotify.New(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_DELETE, sd, progs)
	if err != nil {
		hb.h.log.Warn("live updates: cannot watch the state directory; changes are seen every "+hb.interval.String(), "error", err)
		return nil
	}
	go func() {
		for {
			evs, err := w.Read()
			if err != nil {
				return // closed
			}
			for _, ev := range evs {
				if stateChange(ev, progs) {
					hb.trigger()
					break
				}
			}
		}
	}()
	return w
}

// stateChange reports whether ev is a record that usrsvc or usrsvcd wrote
// (not a temporary file, a lock, or our own read of the daemon's lock).
func stateChange(ev inotify.Event, progs string) bool {
	if strings.HasPrefix(ev.Name, ".") {
		return false // a record being written: its rename follows
	}
	if ev.Dir == progs {
		return strings.HasSuffix(ev.Name, recordSuffix)
	}
	return ev.Name == reloadAckFile
}

// publish sends each client what changed since the last reading, and the
// whole state to new clients.
func (hb *hub) publish(o *overview) {
	var changed []sseEvent
	seen := make(map[string]bool, len(o.Programs)+1)
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.readings++
	for _, p := range o.Programs {
		seen[p.Name] = true
		if key := stableJSON(p); string(key) != string(hb.sent[p.Name]) {
			hb.sent[p.Name] = key
			changed = append(changed, sseEvent{name: "program", data: mustJSON(p)})
		}
	}
	seen[daemonKey] = true
	if key := stableDaemonJSON(o.Daemon); string(key) != string(hb.sent[daemonKey]) {
		hb.sent[daemonKey] = key
		changed = append(changed, sseEvent{name: "daemon", data: mustJSON(o.Daemon)})
	}
	for name := range hb.sent {
		if !seen[name] {
			delete(hb.sent, name)
			changed = append(changed, sseEvent{name: "removed", data: mustJSON(map[string]string{"name": name})})
		}
	}
	var snapshot []sseEvent
	for c := range hb.clients {
		evs := changed
		if c.snapshot {
			if snapshot == nil {
				snapshot = []sseEvent{{name: "snapshot", data: mustJSON(o)}}
			}
			evs, c.snapshot = snapshot, false
		}
		for _, ev := range evs {
			select {
			case c.ch <- ev:
			default: // too far behind: drop it; its browser reconnects
				delete(hb.clients, c)
				close(c.dropped)
			}
			if _, ok := hb.clients[c]; !ok {
				break
			}
		}
	}
}

// stableJSON is p's JSON without its uptime, which changes every second
// without anything happening (the page computes it from the start time).
func stableJSON(p *programView) []byte {
	q := *p
	q.Uptime = 0
	return mustJSON(&q)
}

func stableDaemonJSON(d daemonView) []byte {
	d.Uptime = 0
	return mustJSON(d)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value marshalled here is made of strings, numbers and
		// slices of them.
		panic("web: " + err.Error())
	}
	return b
}

// pidWatch keeps a pidfd on each running program's process (and on
// usrsvcd): an exit pokes the watcher at once.
type pidWatch struct {
	ctx    context.Context
	poke   func()
	mu     sync.Mutex
	byProc map[pidKey]context.CancelFunc
	wg     sync.WaitGroup
}

type pidKey struct {
	pid        int
	startTicks uint64 // 0: not checked (usrsvcd)
}

func newPidWatch(ctx context.Context, poke func()) *pidWatch {
	return &pidWatch{ctx: ctx, poke: poke, byProc: map[pidKey]context.CancelFunc{}}
}

// update watches the processes of o and stops watching the others.
func (pw *pidWatch) update(o *overview, fs proc.FS) {
	want := map[pidKey]bool{}
	for _, p := range o.Programs {
		if p.Running && p.PID > 0 {
			want[pidKey{p.PID, p.startTicks}] = true
		}
	}
	if o.Daemon.Running && o.Daemon.PID > 0 {
		want[pidKey{pid: o.Daemon.PID}] = true
	}
	pw.mu.Lock()
	defer pw.mu.Unlock()
	for k, cancel := range pw.byProc {
		if !want[k] {
			cancel()
			delete(pw.byProc, k)
		}
	}
	for k := range want {
		if _, ok := pw.byProc[k]; ok {
			continue
		}
		pfd, err := proc.PidfdOpen(k.pid)
		if err != nil {
			continue // gone already, or no pidfd here: the tick catches it
		}
		// The pid may have been reused since the reading: the pidfd must
		// be on the process we read.
		if k.startTicks != 0 {
			if p, err := fs.Stat(k.pid); err != nil || p.StartTicks != k.startTicks || p.Zombie() {
				pfd.Close()
				pw.poke()
				continue
			}
		}
		ctx, cancel := context.WithCancel(pw.ctx)
		pw.byProc[k] = cancel
		pw.wg.Add(1)
		go func() {
			defer pw.wg.Done()
			defer pfd.Close()
			if pfd.Wait(ctx) == nil {
				pw.poke()
			}
		}()
	}
}

// closeAll stops every pidfd wait and waits for them to end.
func (pw *pidWatch) closeAll() {
	pw.mu.Lock()
	for k, cancel := range pw.byProc {
		cancel()
		delete(pw.byProc, k)
	}
	pw.mu.Unlock()
	pw.wg.Wait()
}
