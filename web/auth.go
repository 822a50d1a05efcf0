package web

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authenticator checks HTTP Basic credentials against the configured
// username and password (plain, {SHA}+hex SHA-1, or bcrypt), and keeps
// a guessing client from costing much:
//
//   - a peer's failed logins slow its next checks down: none for the first
//     few, then a delay doubling up to maxLoginDelay, forgotten after
//     failureMemory without one (a right password still passes, after the
//     delay);
//   - at most checkSlots password checks run at once (a bcrypt check costs
//     tens of milliseconds of CPU by design); a request whose client left
//     while it waited is not checked at all;
//   - failed logins are logged once a minute per peer, with a count, their
//     user and path cut to 64 bytes (see rateLog);
//   - every 401 closes its connection.
type authenticator struct {
	user [32]byte // SHA-256 of the username: compared in constant time, whatever its length
	// check reports whether a password is right.
	check func(pw string) bool
	off   bool // no credentials configured
	log   *slog.Logger
	fails *rateLog
	slots chan struct{} // password checks in progress
	now   func() time.Time

	// A bcrypt check costs ~50 ms by design; supervisorctl sends 2 to 4
	// requests per command. The digest of the last credentials that
	// passed is remembered so that only the first of them pays it.
	mu   sync.Mutex
	good [32]byte
	// failures are the recent failed logins of each peer.
	failures map[string]*peerFailures
}

type peerFailures struct {
	n    int
	last time.Time
}

// Login throttling.
const (
	// freeFailures is how many failed logins a peer makes before its
	// checks are delayed.
	freeFailures = 3
	// firstLoginDelay is the first delay; each further failure doubles
	// it, up to maxLoginDelay.
	firstLoginDelay = 250 * time.Millisecond
	maxLoginDelay   = 10 * time.Second
	// failureMemory is how long a peer's failures are remembered.
	failureMemory = 10 * time.Minute
	// maxThrottled bounds the peers remembered; beyond, the oldest are
	// forgotten.
	maxThrottled = 4096
)

// checkSlots is how many password checks run at once: at most 2, and half
// the CPUs, so that guessing never takes the whole machine.
var checkSlots = max(1, min(2, runtime.NumCPU()/2))

func newAuthenticator(user, password string, log *slog.Logger) (*authenticator, error) {
	a := &authenticator{log: log, fails: newRateLog(log, time.Minute), slots: make(chan struct{}, checkSlots),
		now: time.Now, failures: map[string]*peerFailures{}}
	if user == "" && password == "" {
		a.off = true
		return a, nil
	}
	if user == "" || password == "" {
		return nil, errors.New("web: set both a username and a password, or neither")
	}
	a.user = sha256.Sum256([]byte(user))
	switch scheme, cost := passwordScheme(password); {
	case scheme == schemeSHA:
		want, err := hex.DecodeString(password[len("{SHA}"):])
		if err != nil || len(want) != sha1.Size {
			return nil, errors.New("web: a {SHA} password must be {SHA} followed by the 40 hex digits of the password's SHA-1")
		}
		a.check = func(pw string) bool {
			got := sha1.Sum([]byte(pw))
			return subtle.ConstantTimeCompare(got[:], want) == 1
		}
	case scheme == schemeBcrypt:
		hash := []byte(password)
		if _, err := bcrypt.Cost(hash); err != nil {
			return nil, errors.New("web: the password looks like a bcrypt hash but is not one: " + err.Error())
		}
		if cost > MaxBcryptCost {
			return nil, fmt.Errorf("web: the password is a bcrypt hash of cost %d, more than %d: every failed login would cost "+
				"seconds of CPU; make one of cost 10 (htpasswd -nbBC 10 USER PASSWORD)", cost, MaxBcryptCost)
		}
		a.check = func(pw string) bool { return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil }
	default:
		want := sha256.Sum256([]byte(password))
		a.check = func(pw string) bool {
			got := sha256.Sum256([]byte(pw))
			return subtle.ConstantTimeCompare(got[:], want[:]) == 1
		}
	}
	return a, nil
}

// verdicts of authenticate.
const (
	authOK = iota
	authFailed
	authGone // the client left before its check
)

// authenticate checks r's credentials for the peer p.
func (a *authenticator) authenticate(r *http.Request, p peerID) int {
	user, pw, found := r.BasicAuth()
	if !found {
		return authFailed
	}
	digest := sha256.Sum256([]byte(user + "\x00" + pw))
	a.mu.Lock()
	cached := subtle.ConstantTimeCompare(digest[:], a.good[:]) == 1
	a.mu.Unlock()
	if cached {
		return authOK
	}
	ctx := r.Context()
	if d := a.delay(p.Key); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return authGone
		}
	}
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return authGone
	}
	if ctx.Err() != nil { // left while the slot was being taken
		<-a.slots
		return authGone
	}
	u := sha256.Sum256([]byte(user))
	userOK := subtle.ConstantTimeCompare(u[:], a.user[:]) == 1
	// The password is checked even for a wrong user: the time taken does
	// not tell which of the two was wrong.
	pwOK := a.check(pw)
	<-a.slots
	a.mu.Lock()
	defer a.mu.Unlock()
	if !userOK || !pwOK {
		a.failed(p.Key)
		return authFailed
	}
	a.good = digest
	delete(a.failures, p.Key)
	return authOK
}

// forgetFailures forgets every peer's failed logins.
func (a *authenticator) forgetFailures() {
	a.mu.Lock()
	clear(a.failures)
	a.mu.Unlock()
}

// delay is how long peer waits before its next check.
func (a *authenticator) delay(peer string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[peer]
	if f == nil || a.now().Sub(f.last) > failureMemory || f.n < freeFailures {
		return 0
	}
	d := firstLoginDelay << min(f.n-freeFailures, 16)
	return min(d, maxLoginDelay)
}

// failed counts a failed login of peer; a.mu is held.
func (a *authenticator) failed(peer string) {
	now := a.now()
	f := a.failures[peer]
	if f == nil {
		if len(a.failures) >= maxThrottled {
			for k, o := range a.failures {
				if now.Sub(o.last) > failureMemory || len(a.failures) >= maxThrottled {
					delete(a.failures, k)
				}
			}
		}
		f = &peerFailures{}
		a.failures[peer] = f
	}
	if now.Sub(f.last) > failureMemory {
		f.n = 0
	}
	f.n++
	f.last = now
}

// wrap answers 401 to every request without the right credentials, and
// logs the failed logins.
func (a *authenticator) wrap(next http.Handler) http.Handler {
	if a.off {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := peerOf(r)
		switch a.authenticate(r, p) {
		case authOK:
			next.ServeHTTP(w, r)
			return
		case authGone:
			return
		}
		if user, _, given := r.BasicAuth(); given {
			a.fails.event("login\x00"+p.Key, func() {
				a.log.Warn("failed login", "peer", p.Name, "user", trunc(user), "method", r.Method, "path", trunc(r.URL.Path))
			}, func(n int) {
				a.log.Warn(fmt.Sprintf("%d failed logins from %s in the last minute", n, p.Key))
			})
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="usrsvcweb", charset="UTF-8"`)
		w.Header().Set("Connection", "close") // a client that is not logged in keeps no connection
		http.Error(w, "401 Unauthorized: usrsvcweb needs the username and password of its [Web] section", http.StatusUnauthorized)
	})
}

// peer names the client of r for logs: its address, or the unix socket's
// peer.
func peer(r *http.Request) string { return peerName(r) }
