package web

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/usrsvc/usrsvc/internal/exitcode"
)

// The streaming responses — supervisorctl tail -f (/logtail,
// /mainlogtail), the page's live updates (/events, /api/v1/events) and
// the API's log follows — share one pool: at most MaxStreams open at
// once, of which at most MaxStreamsPerPeer for one peer (an IP address,
// or a uid and pid on the unix socket), so that one client cannot take
// them all. Beyond, 503 with Retry-After.
const (
	MaxStreams        = 64
	MaxStreamsPerPeer = 8
)

// streamPool counts the streams open, in all and per peer.
type streamPool struct {
	total, perPeer int

	mu     sync.Mutex
	open   int
	byPeer map[string]int
}

func newStreamPool(total, perPeer int) *streamPool {
	return &streamPool{total: total, perPeer: perPeer, byPeer: map[string]int{}}
}

// acquire takes a slot for peer; release it when the stream ends. The
// error says why there is none.
func (p *streamPool) acquire(peer string) (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.open >= p.total:
		return nil, fmt.Errorf("too many live streams (at most %d): close other pages or tail -f of this server, or try again later", p.total)
	case p.byPeer[peer] >= p.perPeer:
		return nil, fmt.Errorf("too many live streams from your address (at most %d): close other pages or tail -f of this server", p.perPeer)
	}
	p.open++
	p.byPeer[peer]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.open--
			if p.byPeer[peer]--; p.byPeer[peer] <= 0 {
				delete(p.byPeer, peer)
			}
		})
	}, nil
}

// acquireStream takes a slot of the stream pool for r's peer; when there
// is none it answers 503 itself (JSON under /api/) and ok is false. Call
// release when the stream ends.
func (h *Handler) acquireStream(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, err := h.streams.acquire(peerOf(r).Key)
	if err != nil {
		w.Header().Set("Retry-After", "10")
		if isAPI(r) {
			writeErrorMsg(w, http.StatusServiceUnavailable, exitcode.TryAgain, err.Error())
		} else {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
		return nil, false
	}
	return release, true
}
