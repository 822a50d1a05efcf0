package web

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
)

// loadWeb writes a main file holding src and reads its [Web] section.
func loadWeb(t *testing.T, src string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	cfg, err := usrsvc.LoadConfig(path)
	require.NoError(t, err)
	return LoadConfig(cfg)
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	w, err := loadWeb(t, "[Main]\npidfile = /run/u/usrsvcd.pid\nstate_dir = /s\n")
	require.NoError(t, err)
	assert.Equal(t, Config{Listen: "unix:/s/usrsvcweb.sock"}, *w)
	path, unix := w.IsUnix()
	assert.True(t, unix)
	assert.Equal(t, "/s/usrsvcweb.sock", path)
}

func TestLoadConfigKeys(t *testing.T) {
	t.Parallel()
	sha := "{SHA}" + strings.Repeat("ab", 20)
	bcrypt := "$2b$10$" + strings.Repeat("a", 53)
	for _, tc := range []struct {
		src  string
		want Config
	}{
		{"listen = unix:/tmp/x.sock\nread_only = yes", Config{Listen: "unix:/tmp/x.sock", ReadOnly: true, ListenLine: 4}},
		{"listen = 127.0.0.1:9001\nusername = u\npassword = pass word", Config{Listen: "127.0.0.1:9001", Username: "u", Password: "pass word", ListenLine: 4}},
		{"listen = [::1]:0\nusername = u\npassword = " + sha, Config{Listen: "[::1]:0", Username: "u", Password: sha, ListenLine: 4}},
		{"listen = :9001\nusername = u\npassword = '" + bcrypt + "'", Config{Listen: ":9001", Username: "u", Password: bcrypt, ListenLine: 4}},
		{"username = u\npassword = 'a ;b #c d'", Config{Listen: "unix:/s/usrsvcweb.sock", Username: "u", Password: "a ;b #c d"}},
		{"username = u\npassword = {sha}" + strings.Repeat("AB", 20), Config{Listen: "unix:/s/usrsvcweb.sock", Username: "u", Password: "{sha}" + strings.Repeat("AB", 20)}},
		{"allowed_hosts = Box.Example.org, 192.0.2.1 ,[2001:db8::1]", Config{Listen: "unix:/s/usrsvcweb.sock", AllowedHosts: []string{"box.example.org", "192.0.2.1", "2001:db8::1"}}},
	} {
		w, err := loadWeb(t, "[Main]\npidfile = /run/u/usrsvcd.pid\nstate_dir = /s\n[Web]\n"+tc.src+"\n")
		require.NoError(t, err, tc.src)
		tc.want.Line = 4
		if tc.want.ListenLine != 0 {
			tc.want.ListenLine = 5
		}
		assert.Equal(t, tc.want, *w, tc.src)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"listen = 127.0.0.1:9001", "usrsvc.cfg:4: listen = 127.0.0.1:9001 is a TCP address but [Web] has no password"},
		{"listen = localhost", "usrsvc.cfg:4: listen = localhost: not unix:PATH nor HOST:PORT"},
		{"listen = h:99999\nusername=u\npassword=password", "usrsvc.cfg:4: listen = h:99999: port \"99999\" is not a number from 0 to 65535"},
		{"listen = unix:rel.sock", "usrsvc.cfg:4: listen = unix:rel.sock must be an absolute path"},
		{"username = u", "usrsvc.cfg:3: [Web] sets username but no password"},
		{"password = password", "usrsvc.cfg:3: [Web] sets a password but no username"},
		{"username = u\npassword = correct horse ;battery staple", `usrsvc.cfg:5: password: the text from ";" on was taken as an inline comment`},
		{"username = u\npassword = secret", "usrsvc.cfg:5: password is too short: 6 characters, a plain password needs at least 8"},
		{"username = u\npassword = '   '", "usrsvc.cfg:5: password is blank"},
		{"username = u\npassword = $2b$15$" + strings.Repeat("a", 53), "usrsvc.cfg:5: password is a bcrypt hash of cost 15: usrsvcweb accepts costs 4 to 14"},
		{"username = u\npassword = {sha}abc", "usrsvc.cfg:5: password starts with {SHA} but is not {SHA} followed by 40 hex digits"},
		{"username = u\npassword = password\npassword_file = /x", "usrsvc.cfg:6: [Web] sets both password (line 5) and password_file"},
		{"username = u\npassword_file = rel", "usrsvc.cfg:5: password_file = rel must be an absolute path"},
		{"username = u\npassword_file = /nonexistent/pw", "usrsvc.cfg:5: password_file = /nonexistent/pw: open: no such file or directory"},
		{"allowed_hosts = http://x", `usrsvc.cfg:4: allowed_hosts: "http://x" is not a host name`},
		{"allowed_hosts = x:80", `usrsvc.cfg:4: allowed_hosts: "x:80" is not a host name`},
		{"tls_cert = /c", "usrsvc.cfg:3: [Web] needs both tls_cert and tls_key"},
		{"tls_cert = /c\ntls_key = /k", "usrsvc.cfg:4: tls_cert and tls_key apply to a TCP listen address"},
		{"username = u\npassword = $2b$10$short", "usrsvc.cfg:5: password looks like a bcrypt hash but is not one"},
		{"read_only = maybe", "usrsvc.cfg:4: read_only"},
		{"lisen = unix:/x", "usrsvc.cfg:4: unknown key lisen in [Web]; did you mean listen?"},
		{"pidfile = /x", "usrsvc.cfg:4: key pidfile does not belong in [Web]; move it to the [Main] section"},
	} {
		_, err := loadWeb(t, "[Main]\npidfile = /run/u/usrsvcd.pid\n[Web]\n"+tc.src+"\n")
		require.Error(t, err, tc.src)
		assert.ErrorIs(t, err, usrsvc.ErrInvalidConfig)
		var ce *usrsvc.ConfigError
		require.True(t, errors.As(err, &ce))
		var got []string
		for _, p := range ce.Problems {
			got = append(got, p[strings.Index(p, "usrsvc.cfg:"):])
		}
		assert.True(t, anyHasPrefix(got, tc.want), "%s:\n got %q\nwant %q", tc.src, got, tc.want)
	}
}

func TestLoadConfigDuplicateSection(t *testing.T) {
	t.Parallel()
	_, err := loadWeb(t, "[Main]\npidfile = /run/u/usrsvcd.pid\n[Web]\n[Web]\n")
	var ce *usrsvc.ConfigError
	require.True(t, errors.As(err, &ce))
	assert.True(t, anyHasPrefix(ce.Problems, ""), "%q", ce.Problems)
	assert.Contains(t, ce.Error(), "duplicate [Web] section (first at line 3); merge them")
}

func anyHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// A password in a main file that group or others can read is refused, as
// ssh refuses such a key; so is a password_file that is not private.
// password_file holds the password on one line.
func TestPasswordFilePermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "usrsvc.cfg")
	write := func(mode os.FileMode, web string) error {
		require.NoError(t, os.WriteFile(path, []byte("[Main]\npidfile = "+dir+"/d.pid\nstate_dir = "+dir+"/state\n[Web]\nusername = u\n"+web+"\n"), 0o600))
		require.NoError(t, os.Chmod(path, mode))
		cfg, err := usrsvc.LoadConfig(path)
		require.NoError(t, err)
		_, err = LoadConfig(cfg)
		return err
	}
	err := write(0o644, "password = correct horse")
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+":6: the main config file holds the [Web] password but is readable by group or others (mode 0644)")
	assert.Contains(t, err.Error(), "chmod go-r "+path)
	assert.ErrorContains(t, write(0o640, "password = correct horse"), "mode 0640")
	assert.NoError(t, write(0o600, "password = correct horse"))

	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("correct horse ;battery staple\n"), 0o600))
	require.NoError(t, write(0o644, "password_file = "+pw))
	cfg, _ := usrsvc.LoadConfig(path)
	w, err := LoadConfig(cfg)
	require.NoError(t, err)
	assert.Equal(t, "correct horse ;battery staple", w.Password, "the whole line: no comment in a password file")
	assert.Equal(t, pw, w.PasswordFile)
	assert.Equal(t, "29 characters, plain, from "+pw, w.PasswordSummary())

	for _, mode := range []os.FileMode{0o640, 0o604, 0o620} {
		require.NoError(t, os.Chmod(pw, mode))
		err := write(0o600, "password_file = "+pw)
		assert.ErrorContains(t, err, "chmod 600 "+pw, "%04o", mode)
	}
	require.NoError(t, os.Chmod(pw, 0o600))
	link := filepath.Join(dir, "pw-link")
	require.NoError(t, os.Symlink(pw, link))
	assert.ErrorContains(t, write(0o600, "password_file = "+link), "symbolic link")
	require.NoError(t, os.WriteFile(pw, []byte("one\ntwo\n"), 0o600))
	assert.ErrorContains(t, write(0o600, "password_file = "+pw), "more than one line")
	require.NoError(t, os.WriteFile(pw, []byte("short\n"), 0o600))
	assert.ErrorContains(t, write(0o600, "password_file = "+pw), "the password is too short")

	// Its directory must not be writable by others.
	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(shared, "pw"), []byte("correct horse\n"), 0o600))
	require.NoError(t, os.Chmod(shared, 0o777))
	assert.ErrorContains(t, write(0o600, "password_file = "+shared+"/pw"), "writable by other accounts")
}

func TestPasswordSummary(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "", Config{}.PasswordSummary())
	assert.Equal(t, "14 characters, plain", Config{Password: "correct horse!"}.PasswordSummary())
	assert.Equal(t, "{SHA} hash (SHA-1 of the password)", Config{Password: "{sha}" + strings.Repeat("a", 40)}.PasswordSummary())
	assert.Equal(t, "bcrypt hash, cost 10", Config{Password: "$2b$10$" + strings.Repeat("a", 53)}.PasswordSummary())
}
