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
		{"listen = 127.0.0.1:9001\nusername = u\npassword = p w", Config{Listen: "127.0.0.1:9001", Username: "u", Password: "p w", ListenLine: 4}},
		{"listen = [::1]:0\nusername = u\npassword = " + sha, Config{Listen: "[::1]:0", Username: "u", Password: sha, ListenLine: 4}},
		{"listen = :9001\nusername = u\npassword = '" + bcrypt + "'", Config{Listen: ":9001", Username: "u", Password: bcrypt, ListenLine: 4}},
		{"username = u\npassword = p", Config{Listen: "unix:/s/usrsvcweb.sock", Username: "u", Password: "p"}},
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
		{"listen = h:99999\nusername=u\npassword=p", "usrsvc.cfg:4: listen = h:99999: port \"99999\" is not a number from 0 to 65535"},
		{"listen = unix:rel.sock", "usrsvc.cfg:4: listen = unix:rel.sock must be an absolute path"},
		{"username = u", "usrsvc.cfg:3: [Web] sets username but no password"},
		{"password = p", "usrsvc.cfg:3: [Web] sets password but no username"},
		{"username = u\npassword = {SHA}abc", "usrsvc.cfg:5: password starts with {SHA} but is not {SHA} followed by 40 hex digits"},
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
