package usrsvc

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/usrsvc/usrsvc/internal/configobj"
)

// WebConfig is the [Web] section of the main config file, read by
// usrsvcweb (the XML-RPC and web interface daemon). usrsvc and usrsvcd do
// not use it, but every load validates it, so checkconfig reports its
// problems with file and line like any other key's.
type WebConfig struct {
	// Listen is where usrsvcweb listens: "unix:/abs/path" (the default is
	// "unix:" + StateDir + "/usrsvcweb.sock") or "HOST:PORT" for TCP.
	Listen string
	// Username and Password are the HTTP Basic credentials. Password is
	// kept as written: plain text, "{SHA}" + 40 hex digits of the SHA-1 of
	// the password (as supervisord accepts), or a bcrypt hash ($2a$, $2b$,
	// $2y$). Both empty: no authentication, allowed only on a unix socket.
	Username string
	Password string
	// ReadOnly refuses every state-changing request.
	ReadOnly bool
	// Line is the line of the [Web] header, 0 when the section is absent.
	Line int
	// ListenLine is the line of the listen key, 0 when it is not set.
	ListenLine int
}

// WebSocketName is the file name of usrsvcweb's default unix socket in the
// state directory.
const WebSocketName = "usrsvcweb.sock"

// IsUnix reports whether Listen is a unix socket address; path is the
// socket's path.
func (w WebConfig) IsUnix() (path string, ok bool) {
	return strings.CutPrefix(w.Listen, "unix:")
}

const kwWeb = "web"

var (
	cfgWebKeys = []string{"listen", "username", "password", "read_only"}
	// {SHA} + 40 hex digits, and bcrypt's modular crypt format; compiled
	// on first use, not at every run's initialisation.
	webSHARE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\{SHA\}[0-9a-fA-F]{40}$`) })
	webBcryptRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\$2[aby]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$`) })
)

// resolveWeb reads the main file's [Web] section into cfg.Web. It runs
// after resolveMain (the default listen address is in the state directory).
func (l *configLoader) resolveWeb(cfg *Config, f *configobj.File) {
	w := &cfg.Web
	web := l.singleSection(f, kwWeb, "Web")
	if cfg.Main.StateDir != "" {
		w.Listen = "unix:" + filepath.Join(cfg.Main.StateDir, WebSocketName)
	}
	if web == nil {
		return
	}
	w.Line = web.Line
	for _, sub := range web.Subs {
		l.add(f.Name, sub.Line, "[Web] has no subsections; remove [[%s]]", sub.Name)
	}
	keys := map[string]rawVal{}
	l.collectKeys(f.Name, web, keys, "[Web]", cfgWebKeys, nil, cfgMainKeys, "the [Main] section")
	listenOK := true
	if r, ok := keys["listen"]; ok && !r.invalid && strings.TrimSpace(r.value) != "" {
		w.ListenLine = r.line
		w.Listen, listenOK = l.listenVal(r)
	}
	if r, ok := keys["username"]; ok && !r.invalid {
		w.Username = strings.TrimSpace(r.value)
		if strings.ContainsAny(w.Username, ":\r\n") {
			l.addAt(r, "username must not contain ':' or a line break (HTTP Basic authentication cannot carry it)")
		}
	}
	if r, ok := keys["password"]; ok && !r.invalid {
		w.Password = r.value
		if v := w.Password; strings.HasPrefix(v, "{SHA}") && !webSHARE().MatchString(v) {
			l.addAt(r, "password starts with {SHA} but is not {SHA} followed by 40 hex digits (the SHA-1 of the password); "+
				"write it as printf %%s PASSWORD | sha1sum, or give the password in plain text")
		} else if strings.HasPrefix(v, "$2") && !webBcryptRE().MatchString(v) {
			l.addAt(r, "password looks like a bcrypt hash but is not one ($2b$COST$ + 53 characters); "+
				"make one with htpasswd -nbBC 10 USER PASSWORD, or give the password in plain text")
		}
	}
	if r, ok := keys["read_only"]; ok {
		w.ReadOnly, _ = l.boolVal(r)
	}
	switch {
	case w.Username != "" && w.Password == "":
		l.add(f.Name, web.Line, "[Web] sets username but no password: add password = ... (plain, {SHA}+hex SHA-1 or a bcrypt hash) or remove username")
	case w.Password != "" && w.Username == "":
		l.add(f.Name, web.Line, "[Web] sets password but no username: add username = NAME")
	}
	if _, unix := w.IsUnix(); listenOK && !unix && w.Password == "" {
		l.add(f.Name, w.ListenLine, "listen = %s is a TCP address but [Web] has no password: "+
			"every local account can reach it, and usrsvcweb runs commands as this one; "+
			"set username and password in [Web], or listen on a unix socket (listen = unix:PATH)", w.Listen)
	}
}

// listenVal reads listen: "unix:PATH" (absolute, or ~/…) or "HOST:PORT".
func (l *configLoader) listenVal(r rawVal) (string, bool) {
	v := strings.TrimSpace(r.value)
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		r.value = p
		path, ok := l.pathVal(r, pathAbs, "")
		if !ok {
			return "", false
		}
		if path == "" {
			l.addAt(r, "listen = unix: needs a socket path: listen = unix:/ABSOLUTE/PATH.sock")
			return "", false
		}
		return "unix:" + path, true
	}
	if err := CheckListenAddr(v); err != nil {
		l.addAt(r, "listen = %s: %v", v, err)
		return "", false
	}
	return v, true
}

// CheckListenAddr checks a TCP listen address HOST:PORT (HOST may be empty
// for every interface, or a bracketed IPv6 address).
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not unix:PATH nor HOST:PORT (%w); write unix:/path/to/usrsvcweb.sock, 127.0.0.1:9001 or [::1]:9001", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not a host name or IP address", host)
	}
	return nil
}
