package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/cfgval"
	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/pathsafe"
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
	// kept as written (in the main file, or in PasswordFile): plain text
	// (8 characters at least), "{SHA}" + 40 hex digits of the SHA-1 of
	// the password (as supervisord accepts; {sha} in any case), or a
	// bcrypt hash ($2a$, $2b$, $2y$, cost 4 to 14). Both empty: no
	// authentication, allowed only on a unix socket.
	Username string
	Password string
	// PasswordFile is the file the password was read from (password_file),
	// "" when it is written in the main file.
	PasswordFile string
	// ReadOnly refuses every state-changing request.
	ReadOnly bool
	// AllowedHosts are the host names (allowed_hosts) that requests may
	// name in their Host header besides localhost, 127.0.0.1 and [::1]:
	// a request naming another is refused (421), which defeats DNS
	// rebinding.
	AllowedHosts []string
	// TLSCert and TLSKey are the PEM files of the certificate (its chain)
	// and its private key (tls_cert, tls_key): usrsvcweb then serves HTTPS
	// on its TCP address. Both or neither.
	TLSCert, TLSKey string
	// Line is the line of the [Web] header, 0 when the section is absent.
	Line int
	// ListenLine is the line of the listen key, 0 when it is not set.
	ListenLine int
}

// PasswordSummary says what the password in force is made of, never
// what it is: "14 characters, plain", "bcrypt hash, cost 10", "{SHA}
// hash"; "" when there is none.
func (w Config) PasswordSummary() string {
	if w.Password == "" {
		return ""
	}
	var what string
	switch scheme, cost := passwordScheme(w.Password); scheme {
	case schemeSHA:
		what = "{SHA} hash (SHA-1 of the password)"
	case schemeBcrypt:
		what = fmt.Sprintf("bcrypt hash, cost %d", cost)
	default:
		what = fmt.Sprintf("%d characters, plain", utf8.RuneCountInString(w.Password))
	}
	if w.PasswordFile != "" {
		what += ", from " + w.PasswordFile
	}
	return what
}

// Password schemes.
const (
	schemePlain = iota
	schemeSHA
	schemeBcrypt
)

// passwordScheme tells how a stored password is written; cost is a
// bcrypt hash's (0 when unreadable).
func passwordScheme(pw string) (scheme, cost int) {
	switch {
	case len(pw) >= 5 && strings.EqualFold(pw[:5], "{SHA}"):
		return schemeSHA, 0
	case strings.HasPrefix(pw, "$2"):
		cost, _ = bcrypt.Cost([]byte(pw))
		return schemeBcrypt, cost
	}
	return schemePlain, 0
}

// Password rules.
const (
	// MinPasswordLength is the least number of characters of a plain
	// password.
	MinPasswordLength = 8
	// MaxBcryptCost is the highest bcrypt cost accepted: each check of a
	// cost-14 hash takes about a second of CPU already, and every request
	// of a client that is not logged in yet costs one.
	MaxBcryptCost = 14
)

// SocketName is the file name of usrsvcweb's default unix socket in the
// state directory.
const SocketName = "usrsvcweb.sock"

// IsUnix reports whether Listen is a unix socket address; path is the
// socket's path.
func (w Config) IsUnix() (path string, ok bool) {
	return strings.CutPrefix(w.Listen, "unix:")
}

var (
	webKeys = []string{"listen", "username", "password", "password_file", "read_only", "allowed_hosts", "tls_cert", "tls_key"}
	// mainKeys are [Main]'s, for a better hint when one is misplaced.
	mainKeys = []string{"pidfile", "config_dir", "state_dir", "usrsvcd_stdout", "usrsvcd_stderr", "sendmail_path", "log_format", "stop_removed"}
	// {SHA} + 40 hex digits, and bcrypt's modular crypt format; compiled
	// on first use, not at every run's initialisation.
	shaRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?i)\{SHA\}[0-9a-f]{40}$`) })
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
	f, mode, err := readMain(cfg.Path)
	if err != nil {
		return nil, err
	}
	r := &webReader{file: cfg.Path, mode: mode}
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

// readMain parses the main config file; mode is its permissions.
func readMain(path string) (*configobj.File, os.FileMode, error) {
	fh, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, 0, errs.File("reading the config file "+path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, 0, errs.File("reading the config file "+path, err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxMainFile))
	if err != nil {
		return nil, 0, errs.File("reading the config file "+path, err)
	}
	// Syntax errors are usrsvc.LoadConfig's to report: what parsed is read.
	f, _ := configobj.Parse(path, data)
	return f, fi.Mode().Perm(), nil
}

// webReader collects the problems of the [Web] section.
type webReader struct {
	file     string
	mode     os.FileMode // the main file's permissions
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
	pwKey := keys["password"]
	if pwf := keys["password_file"]; pwf != nil && pwKey != nil {
		r.add(pwf.Line, "[Web] sets both password (line %d) and password_file: keep only one", pwKey.Line)
	} else if pwf != nil && !pwf.Invalid {
		pwKey = nil
		w.PasswordFile, w.Password = r.passwordFile(pwf)
	}
	if k := pwKey; k != nil && !k.Invalid {
		w.Password = k.Value
		switch {
		case k.Comment != "" && k.Value != "":
			r.add(k.Line, "password: the text from %q on was taken as an inline comment (a ' #' or ' ;' after a blank starts one), "+
				"so the password would be only its first %d characters; if it is part of the password, quote the whole value: "+
				`password = "…", or keep the password in password_file`, k.Comment[:1], utf8.RuneCountInString(k.Value))
		case r.mode&0o044 != 0:
			r.add(k.Line, "the main config file holds the [Web] password but is readable by group or others (mode %04o): "+
				"every local account can read it; refused: run chmod go-r %s (or chmod 600), or move the password to "+
				"password_file = PATH (a file of yours, mode 0600)", r.mode, r.file)
		default:
			if msg := checkPassword(k.Value); msg != "" {
				r.add(k.Line, "password %s", msg)
			}
		}
	}
	if k := keys["read_only"]; k != nil && !k.Invalid {
		v, ok := cfgval.Bool(k.Value)
		if !ok {
			r.add(k.Line, "%s = %q is not a boolean; %s", k.Name, k.Value, cfgval.BoolHelp)
		}
		w.ReadOnly = v
	}
	if k := keys["allowed_hosts"]; k != nil && !k.Invalid {
		for _, h := range cfgval.List(k.Value) {
			host := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
			if host == "" || strings.ContainsAny(host, " /\\@?#*") || strings.Count(host, ":") == 1 {
				r.add(k.Line, "allowed_hosts: %q is not a host name or IP address (write names without port or scheme: allowed_hosts = box.example.org, 192.0.2.10)", h)
				continue
			}
			w.AllowedHosts = append(w.AllowedHosts, host)
		}
	}
	_, unix := w.IsUnix()
	certK, keyK := keys["tls_cert"], keys["tls_key"]
	switch {
	case certK == nil && keyK == nil:
	case certK == nil || keyK == nil:
		r.add(sec.Line, "[Web] needs both tls_cert and tls_key (the certificate and its private key, PEM files), or neither")
	case listenOK && unix:
		r.add(certK.Line, "tls_cert and tls_key apply to a TCP listen address (HOST:PORT); a unix socket needs no TLS: remove them")
	default:
		w.TLSCert, w.TLSKey = r.tlsFiles(certK, keyK)
	}
	hasPassword := keys["password"] != nil || keys["password_file"] != nil
	switch {
	case w.Username != "" && !hasPassword:
		r.add(sec.Line, "[Web] sets username but no password: add password = ... (plain, {SHA}+hex SHA-1 or a bcrypt hash) "+
			"or password_file = PATH, or remove username")
	case hasPassword && w.Username == "":
		r.add(sec.Line, "[Web] sets a password but no username: add username = NAME")
	}
	if listenOK && !unix && !hasPassword {
		r.add(w.ListenLine, "listen = %s is a TCP address but [Web] has no password: "+
			"every local account can reach it, and usrsvcweb runs commands as this one; "+
			"set username and password in [Web], or listen on a unix socket (listen = unix:PATH)", w.Listen)
	}
}

// checkPassword checks a password as stored (plain, {SHA} or bcrypt); it
// returns what is wrong ("" when nothing is), to follow "password ".
func checkPassword(v string) string {
	if strings.TrimSpace(v) == "" {
		return "is blank: choose a password of at least 8 characters, or remove username and password"
	}
	switch scheme, cost := passwordScheme(v); scheme {
	case schemeSHA:
		if !shaRE().MatchString(v) {
			return "starts with {SHA} but is not {SHA} followed by 40 hex digits (the SHA-1 of the password); " +
				"write it as printf %s PASSWORD | sha1sum, or give the password in plain text"
		}
	case schemeBcrypt:
		if !bcryptRE().MatchString(v) {
			return "looks like a bcrypt hash but is not one ($2b$COST$ + 53 characters); " +
				"make one with htpasswd -nbBC 10 USER PASSWORD | cut -d: -f2, or give the password in plain text"
		}
		if cost > MaxBcryptCost || cost < bcrypt.MinCost {
			return fmt.Sprintf("is a bcrypt hash of cost %d: usrsvcweb accepts costs %d to %d (each failed login costs a check, "+
				"and a cost of %d already takes about a second of CPU); make one of cost 10: htpasswd -nbBC 10 USER PASSWORD | cut -d: -f2",
				cost, bcrypt.MinCost, MaxBcryptCost, MaxBcryptCost)
		}
	default:
		if n := utf8.RuneCountInString(v); n < MinPasswordLength {
			return fmt.Sprintf("is too short: %d characters, a plain password needs at least %d; choose a longer one "+
				"(or store a bcrypt hash of it: htpasswd -nbBC 10 USER PASSWORD | cut -d: -f2)", n, MinPasswordLength)
		}
	}
	return ""
}

// maxPasswordFile bounds what is read of a password_file.
const maxPasswordFile = 4 << 10

// passwordFile reads the password of password_file: its one line, checked
// like a password in the main file. The file must be yours, a regular
// file read by nobody else, in a directory others cannot write.
func (r *webReader) passwordFile(k *configobj.Key) (path, pw string) {
	path, ok := r.absPath(k, "password_file")
	if !ok {
		return "", ""
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = errors.New("it is a symbolic link, which usrsvcweb does not follow for a secret: name the file itself")
		}
		r.add(k.Line, "password_file = %s: %v", path, unwrapPath(err))
		return path, ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil {
		err = pathsafe.File(path, fi)
	}
	if err != nil {
		r.add(k.Line, "password_file = %s: %v", path, err)
		return path, ""
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	switch {
	case err != nil:
		r.add(k.Line, "password_file = %s: %v", path, err)
		return path, ""
	case len(data) > maxPasswordFile:
		r.add(k.Line, "password_file = %s is larger than %d bytes: it must hold only the password (or its hash) on one line", path, maxPasswordFile)
		return path, ""
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if strings.ContainsAny(text, "\r\n") {
		r.add(k.Line, "password_file = %s holds more than one line: put only the password (or its hash) on one line", path)
		return path, ""
	}
	if msg := checkPassword(text); msg != "" {
		r.add(k.Line, "password_file = %s: the password %s", path, msg)
		return path, ""
	}
	return path, text
}

// tlsFiles reads tls_cert and tls_key, checks that they load together,
// and that the key is private.
func (r *webReader) tlsFiles(certK, keyK *configobj.Key) (cert, key string) {
	cert, ok1 := r.absPath(certK, "tls_cert")
	key, ok2 := r.absPath(keyK, "tls_key")
	if !ok1 || !ok2 {
		return "", ""
	}
	if err := checkKeyFile(key); err != nil {
		r.add(keyK.Line, "tls_key = %s: %v", key, err)
		return "", ""
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		r.add(certK.Line, "tls_cert = %s, tls_key = %s do not load: %v", cert, key, unwrapPath(err))
		return "", ""
	}
	return cert, key
}

// checkKeyFile refuses a private key file that other accounts could read
// or change.
func checkKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return pathsafe.File(path, fi)
}

// absPath reads a path key: absolute, or ~/….
func (r *webReader) absPath(k *configobj.Key, name string) (string, bool) {
	p := strings.TrimSpace(k.Value)
	if p == "~" || strings.HasPrefix(p, "~/") {
		h, err := home.Dir()
		if err != nil {
			r.add(k.Line, "%s = %s: cannot expand ~ (%v); write the absolute path", name, p, err)
			return "", false
		}
		p = filepath.Join(h, p[1:])
	}
	if !filepath.IsAbs(p) {
		r.add(k.Line, "%s = %s must be an absolute path (it may start with ~/)", name, k.Value)
		return "", false
	}
	return filepath.Clean(p), true
}

// unwrapPath drops the path of an *fs.PathError: messages name it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
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
