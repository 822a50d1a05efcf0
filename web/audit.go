package web

import (
	"context"
	"net/http"
)

// Audit: every change made through usrsvcweb — a start, stop, restart,
// reload, signal, log clearing, reread, or supervisorctl's add or remove
// of a group — is logged at INFO once it succeeded,
// with who asked: the HTTP user (when authentication is on) and the peer
// (an address, or the uid and pid on the unix socket), e.g.
//
//	level=INFO msg="web: stop" program=sleeper user=alice peer=127.0.0.1:5544

// requester is who sent a request, for the audit lines.
type requester struct {
	user, peer string
}

type requesterKey struct{}

// withRequester records who sent r in its context (a route's context, and
// the contexts derived from it, carry it).
func withRequester(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		who := requester{user: trunc(user), peer: peerName(r)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requesterKey{}, who)))
	})
}

// audit logs a change made for the request of ctx.
func (h *Handler) audit(ctx context.Context, action, program string, attrs ...any) {
	who, _ := ctx.Value(requesterKey{}).(requester)
	args := make([]any, 0, 6+len(attrs))
	if program != "" {
		args = append(args, "program", program)
	}
	if who.user != "" {
		args = append(args, "user", who.user)
	}
	args = append(args, "peer", who.peer)
	h.log.Info("web: "+action, append(args, attrs...)...)
}
