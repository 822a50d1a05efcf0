package usrsvc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/usrsvc/usrsvc/internal/configobj"
	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/shellcmd"
)

// maxConfigFileSize bounds what is read from one config file.
const maxConfigFileSize = 4 << 20

// configLoader accumulates the problems of one LoadConfig call.
type configLoader struct {
	home     string // home.Dir(), "" when unknown
	homeErr  error
	problems []problem
	rank     map[string]int // file → position in the load order, for sorting
	sh       shellcmd.Parser
	emails   map[keyPos][]*mail.Address // emailsVal's results

	// What LoadConfigPartial needs to tell which programs the problems
	// concern (see config_partial.go).
	partial     bool                   // keep the parsed files and their section boundaries
	unsafe      bool                   // a file or directory was refused for safety
	files       map[string]*fileLayout // by file name, when partial
	sections    []*sectionRef          // every Program and DefaultSettings section, in load order
	programs    []loadedProgram        // every program section resolved, duplicates included
	keyOf       map[int]string         // problem index → the key it concerns, where the line does not tell
	resErr      error                  // the system ran out of something while reading (see resource)
	stateDirBad *keyPos                // where state_dir is set, when its value is unusable
}

// keyPos is where a key is written.
type keyPos struct {
	file string
	line int
}

// rawVal is one key as read: its value and where it was written.
type rawVal struct {
	key     string // as written
	value   string
	file    string
	line    int
	invalid bool // the parser already reported its value
}

// resource records err when the system ran out of something (open files,
// memory) while reading the configuration: that is no problem of the
// configuration, and the load fails with an error wrapping ErrResource
// (code 11: try again) instead. It reports whether err was one.
func (l *configLoader) resource(what string, err error) bool {
	if !errs.IsResource(err) {
		return false
	}
	if l.resErr == nil {
		l.resErr = errs.File(what, err)
	}
	return true
}

// add records a problem. Line 0 means the whole file.
func (l *configLoader) add(file string, line int, format string, args ...any) {
	l.problems = append(l.problems, problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// addAt records a problem about key r.
func (l *configLoader) addAt(r rawVal, format string, args ...any) {
	l.add(r.file, r.line, format, args...)
}

func (l *configLoader) fileRank(file string) int {
	if r, ok := l.rank[file]; ok {
		return r
	}
	l.rank[file] = len(l.rank)
	return l.rank[file]
}

// err returns the problems, deduplicated and sorted by file (in load order:
// the main file first, then config_dir and its files by name) then line, as
// a *ConfigError; or nil when there is none.
func (l *configLoader) err() error {
	if len(l.problems) == 0 {
		return nil
	}
	seen := map[problem]bool{}
	var ps []problem
	for _, p := range l.problems {
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		l.fileRank(p.File)
	}
	sort.SliceStable(ps, func(i, j int) bool {
		ri, rj := l.rank[ps[i].File], l.rank[ps[j].File]
		if ri != rj {
			return ri < rj
		}
		return ps[i].Line < ps[j].Line
	})
	return configError(ps)
}

// readFile reads and parses a config file, after checking its owner and
// mode. It returns nil when the file cannot be read.
func (l *configLoader) readFile(path string, isMain bool) *configobj.File {
	l.fileRank(path)
	// O_NONBLOCK: opening a FIFO for reading would otherwise block until a
	// writer comes, hanging every tool (and the daemon's reread) on a stray
	// FIFO named *.cfg. The type is checked on the open file below, so a
	// file swapped in between cannot slip through; reads of a regular file
	// ignore O_NONBLOCK.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		switch {
		case l.resource("reading the config file "+path, err):
		case isMain && errors.Is(err, fs.ErrNotExist):
			l.add(path, 0, "config file not found: create it (see man usrsvc.cfg, or docs/configuration.md in usrsvc's source), "+
				"or point --config or USRSVC_CONFIG at another file")
		case errors.Is(err, fs.ErrNotExist):
			l.add(path, 0, "config file vanished while loading; run the command again")
		default:
			l.add(path, 0, "cannot read the config file: %v", unwrapPathErr(err))
		}
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		if !l.resource("reading the config file "+path, err) {
			l.add(path, 0, "cannot read the config file: %v", unwrapPathErr(err))
		}
		return nil
	}
	if !fi.Mode().IsRegular() {
		fix := "remove it or rename it so that it does not end in .cfg"
		if isMain {
			fix = "point --config or USRSVC_CONFIG at the config file"
		}
		l.add(path, 0, "not a regular file but %s; a config file must be a plain file: %s", fileKind(fi.Mode()), fix)
		return nil
	}
	l.checkSafe(path, fi, "config file")
	// Sized from the file's size (one allocation rather than doubling); a
	// file that grew meanwhile is read whole all the same.
	var b bytes.Buffer
	b.Grow(int(min(fi.Size(), maxConfigFileSize)) + bytes.MinRead)
	_, err = b.ReadFrom(io.LimitReader(f, maxConfigFileSize+1))
	data := b.Bytes()
	if err != nil {
		if !l.resource("reading the config file "+path, err) {
			l.add(path, 0, "cannot read the config file: %v", unwrapPathErr(err))
		}
		return nil
	}
	if len(data) > maxConfigFileSize {
		l.add(path, 0, "config file is larger than %d MiB; is it the right file?", maxConfigFileSize>>20)
		return nil
	}
	cf, err := configobj.Parse(path, data)
	if l.partial {
		l.files[path] = newFileLayout(cf, data)
	}
	var list configobj.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			l.add(path, e.Line, "%s", e.Msg)
		}
	}
	return cf
}

// fileKind names the type of a file that is not a regular file.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// checkSafe refuses a config file or directory that other users could
// change (like sshd's StrictModes): writable by group or others, or
// owned by someone who is neither the current user nor root.
func (l *configLoader) checkSafe(path string, fi fs.FileInfo, what string) {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		l.unsafe = true
		l.add(path, 0, "%s is writable by group or others (mode %04o), so another user could make usrsvc run "+
			"their commands; refused: run chmod go-w %s", what, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Getuid() {
			l.unsafe = true
			l.add(path, 0, "%s is owned by uid %d, neither you (uid %d) nor root, so it could run their commands as you; "+
				"refused: chown it to yourself", what, uid, os.Getuid())
		}
	}
}

// unwrapPathErr drops the path from an *fs.PathError: messages already
// start with it.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// configDirFiles lists the *.cfg files of dir (sorted by name, dotfiles
// skipped, the main file itself skipped), after checking dir. r is the
// config_dir key, for problems.
func (l *configLoader) configDirFiles(dir string, r rawVal, mainPath string) []string {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.addAt(r, "config_dir %s does not exist: create it (mkdir -p %s) or remove config_dir", dir, dir)
		return nil
	case l.resource("reading config_dir "+dir, err):
		return nil
	case err != nil:
		l.addAt(r, "config_dir %s cannot be read: %v", dir, unwrapPathErr(err))
		return nil
	case !fi.IsDir():
		l.addAt(r, "config_dir %s is not a directory", dir)
		return nil
	}
	l.fileRank(dir)
	l.checkSafe(dir, fi, "config_dir")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if l.resource("reading config_dir "+dir, err) {
			return nil
		}
		l.addAt(r, "config_dir %s cannot be read: %v", dir, unwrapPathErr(err))
		return nil
	}
	mainFi, _ := os.Stat(mainPath)
	var files []string
	for _, e := range entries { // os.ReadDir sorts by name
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".cfg") {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && mainFi != nil && os.SameFile(fi, mainFi) {
			continue // config_dir holds the main file itself
		}
		files = append(files, p)
	}
	return files
}

// Section keywords, matched case-insensitively.
const (
	kwMain            = "main"
	kwWeb             = "web"
	kwProgram         = "program"
	kwDefaultSettings = "defaultsettings"
	kwEnv             = "env"
	kwMonitor         = "monitor"
	kwMonitoring      = "monitoring"
	kwHook            = "hook"
	kwGroup           = "group"
)

var (
	cfgMainKeys = []string{"pidfile", "config_dir", "state_dir", "usrsvcd_stdout", "usrsvcd_stderr",
		"sendmail_path", "log_format", "stop_removed"}
	cfgProgramKeys = []string{"command", "useshell", "pidfile", "stdout", "stderr", "enabled", "autopid",
		"scan_for_process", "proctitle_re", "autostart", "autorestart", "maxrestarts", "restart_delay",
		"success_seconds", "term_to_kill_seconds", "inherit_env", "defaults", "email_alerts", "directory",
		"stop_signal", "stop_group", "reload_signal", "exit_codes", "env_file", "umask",
		"limit_nofile", "limit_nproc", "limit_core", "limit_as", "limit_memlock",
		"numprocs", "ready", "ready_timeout", "depends_on"}
	cfgProgramKeyAliases = map[string]string{"max_restarts": "maxrestarts"}
	cfgMonitorKeys       = []string{"monitor_after", "activityfile", "activityfile_limit", "rss_limit", "monitor_interval",
		"http_check", "http_expect", "http_body_re", "tcp_check", "exec_check", "check_timeout", "check_failures", "check_action"}
	cfgHookKeys  = []string{"events", "command", "timeout"}
	cfgGroupKeys = []string{"programs"}
)

// The checks of names and numbers are loops rather than regexps compiled at
// package initialisation, which every usrsvc run (even --version) paid for.

// validProgramName matches ^[A-Za-z0-9_.-]+$.
func validProgramName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// validEnvName matches ^[A-Za-z_][A-Za-z0-9_]*$.
func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' || i == 0 && '0' <= s[0] && s[0] <= '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// collectKeys reads sec's keys into dst by canonical (lower-case, alias
// resolved) name, reporting unknown keys and keys written twice under two
// spellings. where names the section for messages; elsewhere/elsewhereName
// are the keys of the other level (program vs [[Monitor]]) for a better hint.
func (l *configLoader) collectKeys(file string, sec *configobj.Section, dst map[string]rawVal, where string,
	known []string, aliases map[string]string, elsewhere []string, elsewhereName string) {
	for _, k := range sec.Keys {
		c := strings.ToLower(k.Name)
		if a, ok := aliases[c]; ok {
			c = a
		}
		r := rawVal{key: k.Name, value: k.Value, file: file, line: k.Line, invalid: k.Invalid}
		if !slices.Contains(known, c) {
			if slices.Contains(elsewhere, c) {
				l.addAt(r, "key %s does not belong in %s; move it to %s", k.Name, where, elsewhereName)
			} else {
				l.addAt(r, "unknown key %s in %s%s", k.Name, where, cfgDidYouMean(k.Name, known))
			}
			continue
		}
		if prev, dup := dst[c]; dup {
			l.addAt(r, "%s and %s (line %d) are the same key; keep only one", k.Name, prev.key, prev.line)
			continue
		}
		dst[c] = r
	}
}

// sectionRef is a [Program:NAME] or [DefaultSettings:NAME] section, with
// its keys collected.
type sectionRef struct {
	kind    string // "Program" or "DefaultSettings"
	name    string
	file    string
	line    int
	keys    map[string]rawVal
	env     []rawVal // key = variable name, in file order
	monitor map[string]rawVal
	hook    map[string]rawVal
}

// collectSection reads a Program or DefaultSettings section.
func (l *configLoader) collectSection(file string, sec *configobj.Section, kind, name string) *sectionRef {
	s := &sectionRef{kind: kind, name: name, file: file, line: sec.Line,
		keys: make(map[string]rawVal, len(sec.Keys)), monitor: map[string]rawVal{}, hook: map[string]rawVal{}}
	where := "[" + sec.Name + "]"
	l.collectKeys(file, sec, s.keys, where, cfgProgramKeys, cfgProgramKeyAliases, cfgMonitorKeys, "a [[Monitor]] subsection")
	if r, ok := s.keys["defaults"]; ok && kind == "DefaultSettings" {
		l.addAt(r, "defaults cannot be used in a [DefaultSettings:...] section (they do not chain); "+
			"set the keys here directly")
		delete(s.keys, "defaults")
	}
	seen := map[string]*configobj.Section{}
	for _, sub := range sec.Subs {
		kw := strings.ToLower(sub.Name)
		if kw == kwMonitoring {
			kw = kwMonitor
		}
		if kw != kwEnv && kw != kwMonitor && kw != kwHook {
			l.add(file, sub.Line, "unknown subsection [[%s]] in %s: only [[Env]], [[Monitor]] and [[Hook]] exist%s",
				sub.Name, where, cfgDidYouMean(sub.Name, []string{"Env", "Monitor", "Monitoring", "Hook"}))
			continue
		}
		if prev, dup := seen[kw]; dup {
			l.add(file, sub.Line, "[[%s]] repeats [[%s]] (line %d) in %s; merge them", sub.Name, prev.Name, prev.Line, where)
			continue
		}
		seen[kw] = sub
		if kw == kwMonitor {
			l.collectKeys(file, sub, s.monitor, "[["+sub.Name+"]] of "+where, cfgMonitorKeys, nil,
				cfgProgramKeys, "the "+where+" section itself (above its subsections)")
			continue
		}
		if kw == kwHook {
			l.collectKeys(file, sub, s.hook, "[["+sub.Name+"]] of "+where, cfgHookKeys, nil, nil, "")
			continue
		}
		for _, k := range sub.Keys {
			r := rawVal{key: k.Name, value: k.Value, file: file, line: k.Line, invalid: k.Invalid}
			if !validEnvName(k.Name) {
				l.addAt(r, "[[Env]] key %q is not a valid environment variable name "+
					"(letters, digits and _, not starting with a digit)", k.Name)
				continue
			}
			s.env = append(s.env, r)
		}
	}
	return s
}

// splitSectionName splits "Program:web" into its keyword (lower-cased) and
// name (trimmed), reporting whether a ':' was present.
// singleSection returns f's section [title] (keyword kw), of which there
// is at most one and which takes no name; a second one, or a name, is a
// problem reported with its line. nil when there is none.
func (l *configLoader) singleSection(f *configobj.File, kw, title string) *configobj.Section {
	var found *configobj.Section
	for _, sec := range f.Sections {
		if k, _, hasName := splitSectionName(sec.Name); k != kw {
			continue
		} else if hasName {
			l.add(f.Name, sec.Line, "[%s]: the [%s] section takes no name", sec.Name, title)
		}
		if found != nil {
			l.add(f.Name, sec.Line, "duplicate [%s] section (first at line %d); merge them", title, found.Line)
			continue
		}
		found = sec
	}
	return found
}

func splitSectionName(s string) (kw, name string, hasName bool) {
	kw, name, hasName = strings.Cut(s, ":")
	return strings.ToLower(strings.TrimSpace(kw)), strings.TrimSpace(name), hasName
}

// maxProgramName is the longest program name. A name becomes file names
// in the state directory; the longest is the temporary file of an atomic
// write, ".NAME.manual.json.tmp" plus up to 10 random digits, NAME + 27
// bytes, which must fit NAME_MAX: 255 bytes on most file systems, 143 on
// eCryptfs (an encrypted home directory). 100 leaves room on all of them.
const maxProgramName = 100

// checkName validates a Program or DefaultSettings name.
func (l *configLoader) checkName(file string, sec *configobj.Section, kind, name string, hasName bool) bool {
	switch {
	case !hasName || name == "":
		l.add(file, sec.Line, "[%s] needs a name: [%s:NAME]", sec.Name, kind)
	case !validProgramName(name):
		l.add(file, sec.Line, "%s name %q may only hold letters, digits, '_', '.' and '-'", kind, name)
	case kind == "Program" && strings.EqualFold(name, "all"):
		l.add(file, sec.Line, "a program cannot be named %q: \"all\" means every program on the command line; rename it", name)
	case kind == "Program" && len(name) > maxProgramName:
		// Reported, but the section is read all the same: it is this
		// program's problem, so "usrsvc start NAME" says 130 like
		// checkconfig, not "no such program".
		l.add(file, sec.Line, "program name is %d characters long; at most %d fit the file names the state directory "+
			"keeps for each program (locks/NAME.lock, programs/NAME.daemon.json, ...): shorten it", len(name), maxProgramName)
		return true
	default:
		return true
	}
	return false
}
