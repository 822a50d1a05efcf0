package web

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// peer is who is at the other end of a connection: for TCP its IP address,
// for a unix socket the uid and pid of the process that connected
// (SO_PEERCRED). Key is what limits and throttling count by; Name is what
// the logs show.
type peerID struct {
	Key  string
	Name string
	Unix bool
}

type peerCtxKey struct{}

// peerOfConn identifies the client of c.
func peerOfConn(c net.Conn) peerID {
	for {
		switch x := c.(type) {
		case *limitedConn:
			return x.peer
		case *tls.Conn:
			c = x.NetConn()
			continue
		case *net.UnixConn:
			raw, err := x.SyscallConn()
			if err == nil {
				var cred *unix.Ucred
				var cerr error
				if err = raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err == nil && cerr == nil {
					k := fmt.Sprintf("unix uid %d pid %d", cred.Uid, cred.Pid)
					return peerID{Key: k, Name: k, Unix: true}
				}
			}
			return peerID{Key: "unix", Name: "unix socket", Unix: true}
		}
		addr := c.RemoteAddr().String()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		return peerID{Key: host, Name: addr}
	}
}

// ConnContext is an http.Server's ConnContext that records who the client
// of each connection is ([NewServer] sets it): the handler's logs, per-peer
// throttling and audit lines name the unix socket's peer by uid and pid.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerCtxKey{}, peerOfConn(c))
}

// peerOf is the client of r: recorded by ConnContext, else its address.
func peerOf(r *http.Request) peerID {
	if p, ok := r.Context().Value(peerCtxKey{}).(peerID); ok {
		if !p.Unix {
			p.Name = r.RemoteAddr // the port of this connection
		}
		return p
	}
	if r.RemoteAddr == "" || r.RemoteAddr == "@" {
		return peerID{Key: "unix", Name: "unix socket", Unix: true}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return peerID{Key: host, Name: r.RemoteAddr}
}

// peerName names the client of r for logs: its address, or the unix
// socket's peer uid and pid.
func peerName(r *http.Request) string { return peerOf(r).Name }

// Connection bounds of [LimitListener].
const (
	// MaxConns bounds the connections open at once.
	MaxConns = 256
	// MaxConnsPerPeer bounds the connections of one peer (an IP address,
	// or a uid and pid on the unix socket): one client cannot take them
	// all.
	MaxConnsPerPeer = 32
)

// LimitListener returns ln accepting at most total connections at once,
// and at most perPeer from one peer (see [MaxConns], [MaxConnsPerPeer]);
// a connection beyond is closed as soon as it is accepted, and logged (at
// most once a minute per peer) to log, which may be nil.
func LimitListener(ln net.Listener, total, perPeer int, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, total: total, perPeer: perPeer, byPeer: map[string]int{},
		refusals: newRateLog(log, time.Minute)}
}

type limitListener struct {
	net.Listener
	total, perPeer int
	refusals       *rateLog

	mu     sync.Mutex
	open   int
	byPeer map[string]int
}

// Accept returns the next connection within the bounds.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p := peerOfConn(c)
		l.mu.Lock()
		why := ""
		switch {
		case l.open >= l.total:
			why = fmt.Sprintf("%d connections open, the most usrsvcweb keeps", l.open)
		case l.byPeer[p.Key] >= l.perPeer:
			why = fmt.Sprintf("%d connections open from this peer, the most one peer may have", l.byPeer[p.Key])
		default:
			l.open++
			l.byPeer[p.Key]++
		}
		l.mu.Unlock()
		if why != "" {
			c.Close()
			l.refusals.warn("connection refused: "+why, p.Key, "peer", p.Name)
			continue
		}
		return &limitedConn{Conn: c, l: l, peer: p}, nil
	}
}

// counts returns the connections open, in all and from peer key (tests).
func (l *limitListener) counts(key string) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byPeer[key]
}

type limitedConn struct {
	net.Conn
	l      *limitListener
	peer   peerID
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.mu.Lock()
		c.l.open--
		if c.l.byPeer[c.peer.Key]--; c.l.byPeer[c.peer.Key] <= 0 {
			delete(c.l.byPeer, c.peer.Key)
		}
		c.l.mu.Unlock()
	}
	return c.Conn.Close()
}
