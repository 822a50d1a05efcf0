package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/exitcode"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// testCA is a certificate authority made for one test; nothing of it is
// written in the repository.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usrsvc test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for 127.0.0.1 named cn, signed by the CA,
// and its key (mode 0600), in dir.
func (ca *testCA) issue(t *testing.T, dir, cn string) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written aside and renamed, as certbot replaces them.
	require.NoError(t, os.WriteFile(certFile+".new", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyFile+".new", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	require.NoError(t, os.Rename(certFile+".new", certFile))
	require.NoError(t, os.Rename(keyFile+".new", keyFile))
	return certFile, keyFile
}

// TLS: a client that verifies the server against the CA connects; the
// certificate is read again when its files change.
func TestTLS(t *testing.T) {
	// Not parallel: usrsvcweb sets the process umask while it creates its socket.
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, dir, "first")
	cfgPath, _ := writeConfig(t, "listen = 127.0.0.1:0\nusername = admin\npassword = correct horse\ntls_cert = "+certFile+"\ntls_key = "+keyFile)
	addr, stop, logs := serve(t, "--config", cfgPath)
	client := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	}
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v1/programs", nil)
		req.SetBasicAuth("admin", "correct horse")
		return client().Do(req)
	}
	resp, err := get()
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "first", resp.TLS.PeerCertificates[0].Subject.CommonName)
	// Plain HTTP gets nothing useful.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
	// A client without the CA refuses the server.
	_, err = (&http.Client{Timeout: 5 * time.Second}).Get("https://" + addr + "/")
	assert.ErrorContains(t, err, "certificate")

	// Renewed: the next connection gets the new certificate.
	time.Sleep(10 * time.Millisecond) // a later modification time
	ca.issue(t, dir, "renewed")
	testproc.WaitFor(t, 10*time.Second, func() bool {
		resp, err := get()
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName == "renewed"
	}, "the renewed certificate served")
	assert.Contains(t, logs.String(), "TLS certificate reloaded")
	code, _ := stop()
	assert.Equal(t, 0, code)

	// A key others can read is refused.
	require.NoError(t, os.Chmod(keyFile, 0o644))
	var out, errb bytes.Buffer
	assert.Equal(t, 130, run([]string{"--config", cfgPath}, &out, &errb))
	assert.Contains(t, errb.String(), "tls_key = "+keyFile+": "+keyFile+" is readable or writable by group or others (mode 0644)")
}

// A TCP address beyond loopback without TLS is warned about at start.
func TestPlainTextBeyondLoopbackWarned(t *testing.T) {
	cfgPath, _ := writeConfig(t, "listen = 0.0.0.0:0\nusername = admin\npassword = correct horse")
	_, stop, logs := serve(t, "--config", cfgPath)
	stop()
	assert.Contains(t, logs.String(), "beyond this host, without TLS")
	cfgPath, _ = writeConfig(t, "listen = 127.0.0.1:0\nusername = admin\npassword = correct horse")
	_, stop, logs = serve(t, "--config", cfgPath)
	stop()
	assert.NotContains(t, logs.String(), "without TLS")
}

// A port in use is TRY_AGAIN (11) with the fix, not "a bug" (254).
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfgPath, _ := writeConfig(t, "listen = "+ln.Addr().String()+"\nusername = admin\npassword = correct horse")
	var out, errb bytes.Buffer
	assert.Equal(t, int(exitcode.TryAgain), run([]string{"--config", cfgPath}, &out, &errb))
	assert.Contains(t, errb.String(), "the address is in use by another program")
}

// A socket in a directory others can write is refused; a socket of
// another account in the way is neither removed nor replaced.
func TestSocketPlanting(t *testing.T) {
	cfgPath, _ := writeConfig(t, "")
	shared := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, os.ModeSticky|0o777))
	var out, errb bytes.Buffer
	assert.Equal(t, 130, run([]string{"--config", cfgPath, "--listen", "unix:" + shared + "/web.sock"}, &out, &errb))
	assert.Contains(t, errb.String(), "writable by other accounts")

	if os.Geteuid() != 0 {
		t.Skip("a socket of another account needs root to make (CI runs as root)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "web.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	require.NoError(t, os.Lchown(sock, 65534, 65534))
	errb.Reset()
	assert.Equal(t, int(exitcode.InsufficientPermissions), run([]string{"--config", cfgPath, "--listen", "unix:" + sock}, &out, &errb))
	assert.Contains(t, errb.String(), "is a socket of uid 65534, not yours")
	fi, err := os.Lstat(sock)
	require.NoError(t, err, "not removed")
	assert.Equal(t, uint32(65534), fi.Sys().(*syscall.Stat_t).Uid)
	assert.True(t, strings.Contains(errb.String(), "neither removes nor replaces it"))
}
