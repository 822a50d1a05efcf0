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
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// authenticator checks HTTP Basic credentials against the configured
// username and password (plain, {SHA}+hex SHA-1, or bcrypt).
type authenticator struct {
	user [32]byte // SHA-256 of the username: compared in constant time, whatever its length
	// check reports whether a password is right.
	check func(pw string) bool
	off   bool // no credentials configured
	log   *slog.Logger

	// A bcrypt check costs ~50 ms by design; supervisorctl sends 2 to 4
	// requests per command. The digest of the last credentials that
	// passed is remembered so that only the first of them pays it.
	mu   sync.Mutex
	good [32]byte
}

func newAuthenticator(user, password string, log *slog.Logger) (*authenticator, error) {
	a := &authenticator{log: log}
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

// ok reports whether r carries the right credentials.
func (a *authenticator) ok(r *http.Request) bool {
	if a.off {
		return true
	}
	user, pw, found := r.BasicAuth()
	if !found {
		return false
	}
	digest := sha256.Sum256([]byte(user + "\x00" + pw))
	a.mu.Lock()
	cached := subtle.ConstantTimeCompare(digest[:], a.good[:]) == 1
	a.mu.Unlock()
	if cached {
		return true
	}
	u := sha256.Sum256([]byte(user))
	userOK := subtle.ConstantTimeCompare(u[:], a.user[:]) == 1
	// The password is checked even for a wrong user: the time taken does
	// not tell which of the two was wrong.
	if pwOK := a.check(pw); !userOK || !pwOK {
		return false
	}
	a.mu.Lock()
	a.good = digest
	a.mu.Unlock()
	return true
}

// wrap answers 401 to every request without the right credentials, and
// logs the failed login with the peer's address.
func (a *authenticator) wrap(next http.Handler) http.Handler {
	if a.off {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ok(r) {
			user, _, given := r.BasicAuth()
			if given {
				a.log.Warn("failed login", "peer", peer(r), "user", user, "method", r.Method, "path", r.URL.Path)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="usrsvcweb", charset="UTF-8"`)
			http.Error(w, "401 Unauthorized: usrsvcweb needs the username and password of its [Web] section", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// peer names the client of r for logs: its address, or "unix socket".
func peer(r *http.Request) string {
	if r.RemoteAddr == "" || r.RemoteAddr == "@" {
		return "unix socket"
	}
	return r.RemoteAddr
}
