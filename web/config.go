package web

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cfgval"
	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/home"
)

// Config is the [Web] section of the main config file: usrsvcweb's
// settings. usrsvc and usrsvcd do not use it; usrsvcd checkconfig checks it
// with [LoadConfig], with file and line like any other key's.
type Config struct {
	// Listen is where usrsvcweb listens: "unix:/abs/path" (the default is
	// "unix:" + the state directory + "/usrsvcweb.sock") or "HOST:PORT"
	// for TCP.
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

// SocketName is the file name of usrsvcweb's default unix socket in the
// state directory.
const SocketName = "usrsvcweb.sock"

// IsUnix reports whether Listen is a unix socket address; path is the
// socket's path.
func (w Config) IsUnix() (path string, ok bool) {
	return strings.CutPrefix(w.Listen, "unix:")
}

var (
	webKeys = []string{"listen", "username", "password", "read_only"}
	// mainKeys are [Main]'s, for a better hint when one is misplaced.
	mainKeys = []string{"pidfile", "config_dir", "state_dir", "usrsvcd_stdout", "usrsvcd_stderr", "sendmail_path", "log_format"}
	// {SHA} + 40 hex digits, and bcrypt's modular crypt format; compiled
	// on first use, not at every run's initialisation.
	shaRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\{SHA\}[0-9a-fA-F]{40}$`) })
	bcryptRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\$2[aby]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$`) })
)

// maxMainFile bounds what is read of the main config file.
const maxMainFile = 4 << 20

// LoadConfig reads the [Web] section of cfg's main file (cfg as
// usrsvc.LoadConfig returns it: the [Main] section is taken from it). It
// returns the defaults when there is none, and a *usrsvc.ConfigError
// listing every problem of the section, each with its file and line.
func LoadConfig(cfg *usrsvc.Config) (*Config, error) {
	w := &Config{}
	if cfg.StateDir != "" {
		w.Listen = "unix:" + filepath.Join(cfg.StateDir, SocketName)
	}
	if cfg.Path == "" {
		return w, nil
	}
	f, err := readMain(cfg.Path)
	if err != nil {
		return nil, err
	}
	r := &webReader{file: cfg.Path}
	var sec *configobj.Section
	for _, s := range f.Sections {
		kw, _, hasName := strings.Cut(s.Name, ":")
		if !strings.EqualFold(strings.TrimSpace(kw), "web") {
			continue
		}
		if hasName {
			r.add(s.Line, "[%s]: the [Web] section takes no name", s.Name)
		}
		if sec != nil {
			r.add(s.Line, "duplicate [Web] section (first at line %d); merge them", sec.Line)
			continue
		}
		sec = s
	}
	if sec != nil {
		r.section(w, sec)
	}
	if len(r.problems) > 0 {
		return nil, r.err()
	}
	return w, nil
}

// readMain parses the main config file.
func readMain(path string) (*configobj.File, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, errs.File("reading the config file "+path, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxMainFile))
	if err != nil {
		return nil, errs.File("reading the config file "+path, err)
	}
	// Syntax errors are usrsvc.LoadConfig's to report: what parsed is read.
	f, _ := configobj.Parse(path, data)
	return f, nil
}

// webReader collects the problems of the [Web] section.
type webReader struct {
	file     string
	problems []problem
}

type problem struct {
	line int
	msg  string
}

func (r *webReader) add(line int, format string, args ...any) {
	r.problems = append(r.problems, problem{line, fmt.Sprintf(format, args...)})
}

func (r *webReader) err() error {
	sort.SliceStable(r.problems, func(i, j int) bool { return r.problems[i].line < r.problems[j].line })
	e := &usrsvc.ConfigError{}
	for _, p := range r.problems {
		if p.line > 0 {
			e.Problems = append(e.Problems, fmt.Sprintf("%s:%d: %s", r.file, p.line, p.msg))
		} else {
			e.Problems = append(e.Problems, fmt.Sprintf("%s: %s", r.file, p.msg))
		}
	}
	return e
}

// section reads sec's keys into w.
func (r *webReader) section(w *Config, sec *configobj.Section) {
	w.Line = sec.Line
	for _, sub := range sec.Subs {
		r.add(sub.Line, "[Web] has no subsections; remove [[%s]]", sub.Name)
	}
	keys := map[string]*configobj.Key{}
	for _, k := range sec.Keys {
		c := strings.ToLower(k.Name)
		switch {
		case slices.Contains(mainKeys, c):
			r.add(k.Line, "key %s does not belong in [Web]; move it to the [Main] section", k.Name)
			continue
		case !slices.Contains(webKeys, c):
			r.add(k.Line, "unknown key %s in [Web]%s", k.Name, cfgval.DidYouMean(k.Name, webKeys))
			continue
		}
		if prev, dup := keys[c]; dup {
			r.add(k.Line, "%s and %s (line %d) are the same key; keep only one", k.Name, prev.Name, prev.Line)
			continue
		}
		keys[c] = k
	}
	listenOK := true
	if k := keys["listen"]; k != nil && !k.Invalid && strings.TrimSpace(k.Value) != "" {
		w.ListenLine = k.Line
		w.Listen, listenOK = r.listen(k)
	}
	if k := keys["username"]; k != nil && !k.Invalid {
		w.Username = strings.TrimSpace(k.Value)
		if strings.ContainsAny(w.Username, ":\r\n") {
			r.add(k.Line, "username must not contain ':' or a line break (HTTP Basic authentication cannot carry it)")
		}
	}
	if k := keys["password"]; k != nil && !k.Invalid {
		w.Password = k.Value
		if v := w.Password; strings.HasPrefix(v, "{SHA}") && !shaRE().MatchString(v) {
			r.add(k.Line, "password starts with {SHA} but is not {SHA} followed by 40 hex digits (the SHA-1 of the password); "+
				"write it as printf %%s PASSWORD | sha1sum, or give the password in plain text")
		} else if strings.HasPrefix(v, "$2") && !bcryptRE().MatchString(v) {
			r.add(k.Line, "password looks like a bcrypt hash but is not one ($2b$COST$ + 53 characters); "+
				"make one with htpasswd -nbBC 10 USER PASSWORD, or give the password in plain text")
		}
	}
	if k := keys["read_only"]; k != nil && !k.Invalid {
		v, ok := cfgval.Bool(k.Value)
		if !ok {
			r.add(k.Line, "%s = %q is not a boolean; %s", k.Name, k.Value, cfgval.BoolHelp)
		}
		w.ReadOnly = v
	}
	switch {
	case w.Username != "" && w.Password == "":
		r.add(sec.Line, "[Web] sets username but no password: add password = ... (plain, {SHA}+hex SHA-1 or a bcrypt hash) or remove username")
	case w.Password != "" && w.Username == "":
		r.add(sec.Line, "[Web] sets password but no username: add username = NAME")
	}
	if _, unix := w.IsUnix(); listenOK && !unix && w.Password == "" {
		r.add(w.ListenLine, "listen = %s is a TCP address but [Web] has no password: "+
			"every local account can reach it, and usrsvcweb runs commands as this one; "+
			"set username and password in [Web], or listen on a unix socket (listen = unix:PATH)", w.Listen)
	}
}

// listen reads listen: "unix:PATH" (absolute, or ~/…) or "HOST:PORT".
func (r *webReader) listen(k *configobj.Key) (string, bool) {
	v := strings.TrimSpace(k.Value)
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		p = strings.TrimSpace(p)
		if p == "~" || strings.HasPrefix(p, "~/") {
			h, err := home.Dir()
			if err != nil {
				r.add(k.Line, "listen = %s: cannot expand ~ (%v); write the absolute path", v, err)
				return "", false
			}
			p = filepath.Join(h, p[1:])
		}
		switch {
		case p == "":
			r.add(k.Line, "listen = unix: needs a socket path: listen = unix:/ABSOLUTE/PATH.sock")
			return "", false
		case !filepath.IsAbs(p):
			r.add(k.Line, "listen = %s must be an absolute path (it may start with ~/)", v)
			return "", false
		}
		return "unix:" + filepath.Clean(p), true
	}
	if err := CheckListenAddr(v); err != nil {
		r.add(k.Line, "listen = %s: %v", v, err)
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
