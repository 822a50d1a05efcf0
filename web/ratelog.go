package web

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// rateLog logs what a client can cause at will (a failed login, a refused
// connection or Host) at most once per window per peer and message: the
// first in full, then, when the window ends, one line counting all of
// them. A flood costs the disk two lines a minute per peer, not one per
// request. It tracks at most maxRateKeys peers; beyond, they share one.
type rateLog struct {
	log    *slog.Logger
	window time.Duration

	mu      sync.Mutex
	entries map[string]*rateEntry
}

type rateEntry struct {
	count int
	flush *time.Timer
}

// maxRateKeys bounds the peers a rateLog tracks at once.
const maxRateKeys = 1024

// otherPeers is the key the peers beyond maxRateKeys share.
const otherPeers = "other peers"

func newRateLog(log *slog.Logger, window time.Duration) *rateLog {
	return &rateLog{log: log, window: window, entries: map[string]*rateEntry{}}
}

// warn logs msg with attrs at WARN, unless the same msg from peer key was
// logged in this window: then it is counted, and the count logged when
// the window ends ("N times from KEY in the last 1m0s: MSG").
func (rl *rateLog) warn(msg, key string, attrs ...any) {
	rl.event(msg+"\x00"+key, func() { rl.log.Warn(msg, attrs...) }, func(n int) {
		rl.log.Warn(fmt.Sprintf("%s: %d times from %s in the last %s", msg, n, key, window(rl.window)))
	})
}

// event calls first for the first event of its key in a window, and
// summary with the window's count when the window ends, if more came.
func (rl *rateLog) event(key string, first func(), summary func(n int)) {
	rl.mu.Lock()
	e := rl.entries[key]
	if e == nil && len(rl.entries) >= maxRateKeys {
		key = otherPeers
		e = rl.entries[key]
	}
	if e != nil {
		e.count++
		rl.mu.Unlock()
		return
	}
	e = &rateEntry{count: 1}
	rl.entries[key] = e
	e.flush = time.AfterFunc(rl.window, func() {
		rl.mu.Lock()
		n := e.count
		delete(rl.entries, key)
		rl.mu.Unlock()
		if n > 1 {
			summary(n)
		}
	})
	rl.mu.Unlock()
	if key != otherPeers {
		first()
	}
}

func window(d time.Duration) string {
	if d == time.Minute {
		return "minute"
	}
	return d.String()
}

// maxLogField bounds a client-given field (a user name, a path) in the
// logs.
const maxLogField = 64

// trunc cuts s to maxLogField bytes (on a character boundary), marking
// the cut.
func trunc(s string) string {
	if len(s) <= maxLogField {
		return s
	}
	cut := maxLogField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}
