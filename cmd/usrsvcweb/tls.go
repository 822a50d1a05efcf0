package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/usrsvc/usrsvc/internal/pathsafe"
)

// certReloader serves the certificate of [Web] tls_cert and tls_key, read
// again when either file changes (its modification time, size or inode:
// a renewal by certbot or acme.sh replaces them) or on SIGHUP. A pair
// that does not load, or a key file others could read, is logged and
// the certificate in force kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp string // the files' identity when cert was read
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// stampOf identifies the current versions of the files.
func (c *certReloader) stampOf() string {
	s := ""
	for _, p := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return "error"
		}
		s += fmt.Sprintf("%s %d %d;", fi.ModTime().Format(time.RFC3339Nano), fi.Size(), inode(fi))
	}
	return s
}

// reload reads the pair again.
func (c *certReloader) reload() error {
	stamp := c.stampOf()
	f, err := os.Open(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls_key %s: %w", c.keyFile, err)
	}
	fi, err := f.Stat()
	f.Close()
	if err == nil {
		err = pathsafe.File(c.keyFile, fi)
	}
	if err != nil {
		return fmt.Errorf("tls_key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert %s, tls_key %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.Lock()
	c.cert, c.stamp = &cert, stamp
	c.mu.Unlock()
	return nil
}

// reloadLogged reloads, logging the outcome (SIGHUP, a changed file).
func (c *certReloader) reloadLogged(why string) {
	if err := c.reload(); err != nil {
		c.log.Error("TLS certificate not reloaded; the one in force is kept", "why", why, "error", err)
		c.mu.Lock()
		c.stamp = c.stampOf() // not again until the files change again
		c.mu.Unlock()
		return
	}
	c.log.Info("TLS certificate reloaded", "why", why, "cert", c.certFile)
}

// getCertificate is tls.Config.GetCertificate: the pair in force, read
// again first when the files changed.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	changed := c.stampOf() != c.stamp
	c.mu.Unlock()
	if changed {
		c.reloadLogged("the files changed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// tlsConfig is the server's TLS configuration.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate, NextProtos: []string{"http/1.1"}}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
