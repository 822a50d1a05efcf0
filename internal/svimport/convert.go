// Package svimport converts a supervisord configuration into usrsvc's:
// what `usrsvc import` does. Every key supervisord knows has a rule (see
// rules.go, which the migration guide shows): converted to the usrsvc key
// that does the same, or written as a "# not converted: KEY = VALUE — why"
// comment. Nothing is dropped silently, and no password is ever written.
package svimport

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/usrsvc/usrsvc/internal/cfgval"
	"github.com/usrsvc/usrsvc/internal/shellcmd"
	"github.com/usrsvc/usrsvc/internal/supervisordconf"
)

// Options of a conversion. The zero value reads the environment, host name
// and home directory of the importing process.
type Options struct {
	// Include follows the [include] section: the files it names are
	// converted too. Without it they are listed in a comment.
	Include bool
	// Environ is the environment %(ENV_X)s expands from (os.Environ when
	// nil), Hostname the %(host_node_name)s (os.Hostname when ""), Home the
	// account's home directory (os.UserHomeDir when "").
	Environ  []string
	Hostname string
	Home     string
}

// StateDir is where usrsvc keeps its files by default, as written in a
// converted configuration.
const StateDir = "~/.local/state/usrsvc"

// Result is a converted configuration.
type Result struct {
	Source   string   // the supervisord file, absolute
	Read     []string // every supervisord file read
	Programs int
	Groups   int
	// NotConverted counts the keys written as "# not converted:" comments.
	NotConverted int
	// Warnings are what the person importing must know (for stderr).
	Warnings []string

	main, web, defaults *section
	programs, groups    []*section
	trailer             []string // the sections not converted, as comments
}

// section is one usrsvc section being written.
type section struct {
	comments []string // before the header
	header   string
	lines    []string
	env      []string // [[Env]] lines
	file     string   // its file in the -o layout, under usrsvc.d/
}

// conv is the state of a conversion.
type conv struct {
	opt    Options
	res    *Result
	cfg    *supervisordconf.Config
	shell  shellcmd.Parser
	osEnv  map[string]string
	sdEnv  []supervisordconf.Pair // [supervisord] environment
	groups map[string]string      // supervisord program name → its [group:x]
	names  map[string]string      // supervisord program name → usrsvc program name
	used   map[string]bool        // usrsvc names taken

	// The section being converted.
	sec      *supervisordconf.Section
	out      *section
	vars     map[string]any
	fromOS   map[string]bool // ENV_X names whose value comes from the importing environment
	name     string          // the usrsvc program name
	numprocs int
	redirect bool
	stopSet  bool
	// The program's environment, expanded before its own variables count
	// as ENV_X (as supervisord expands it), and the names it used.
	progEnv       string
	progEnvOK     bool
	progEnvFrozen []string

	// [Web], from the http server sections.
	webPort, webUser string
	webPassword      *supervisordconf.Key
	inetSection      *supervisordconf.Section
	unixListen       string
}

// Convert reads the supervisord configuration at path and converts it. The
// error is only for a file that cannot be read.
func Convert(path string, opt Options) (*Result, error) {
	if opt.Environ == nil {
		opt.Environ = os.Environ()
	}
	if opt.Hostname == "" {
		opt.Hostname, _ = os.Hostname()
	}
	if opt.Home == "" {
		opt.Home, _ = os.UserHomeDir()
	}
	c := &conv{opt: opt, osEnv: map[string]string{}, groups: map[string]string{}, names: map[string]string{},
		used: map[string]bool{}}
	for _, kv := range opt.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.osEnv[k] = v
		}
	}
	base := map[string]any{"host_node_name": opt.Hostname}
	for k, v := range c.osEnv {
		base["ENV_"+k] = v
	}
	cfg, err := supervisordconf.Load(path, opt.Include, base)
	if err != nil {
		return nil, err
	}
	c.cfg = cfg
	c.res = &Result{Source: cfg.Path, Read: cfg.Files}
	for _, p := range cfg.Problems {
		c.res.Warnings = append(c.res.Warnings, "supervisord would refuse or warn: "+p)
	}
	c.res.main = &section{header: "[Main]", lines: []string{"pidfile = " + StateDir + "/usrsvcd.pid"}}
	c.res.defaults = &section{file: "00-supervisord.cfg", header: "[DefaultSettings:supervisord]",
		comments: []string{"# supervisord's defaults where usrsvc's differ, and what [supervisord] gives",
			"# every program; each converted program has defaults = supervisord."},
		lines: []string{"autorestart = unexpected", "success_seconds = 1", "term_to_kill_seconds = 10"}}
	c.prepare()
	for _, s := range cfg.Sections {
		c.section(s)
	}
	for _, s := range cfg.Ignored {
		c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# not converted: [include] of %s:%d — supervisord ignores the [include] of an included file", s.File, s.Line))
		c.res.NotConverted++
	}
	c.finishWeb()
	return c.res, nil
}

// prepare reads what other sections need first: [supervisord]'s
// environment, the programs' names and groups.
func (c *conv) prepare() {
	if s := c.cfg.Section("supervisord"); s != nil {
		if k := s.Get("environment"); k != nil {
			vars := c.baseVars(k)
			if v, _, err := supervisordconf.Expand(k.Value, vars, nil); err == nil {
				c.sdEnv, _ = supervisordconf.Pairs(v)
			}
		}
	}
	for _, s := range c.cfg.Sections {
		if s.Kind() != "group" {
			continue
		}
		if k := s.Get("programs"); k != nil {
			for _, p := range cfgval.List(strings.ReplaceAll(k.Value, "\n", " ")) {
				c.groups[p] = s.Arg()
			}
		}
	}
	for _, s := range c.cfg.Sections {
		if s.Kind() == "program" {
			c.names[s.Arg()] = c.uniqueName(s.Arg())
		}
	}
}

// uniqueName makes a supervisord name a valid usrsvc program name, unique
// among the converted ones.
func (c *conv) uniqueName(name string) string {
	b := []rune(name)
	for i, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			b[i] = '_'
		}
	}
	n := string(b)
	if len(n) > 90 {
		n = n[:90]
	}
	if n == "" || n == "all" {
		n += "_"
	}
	base := n
	for i := 2; c.used[n]; i++ {
		n = fmt.Sprintf("%s_%d", base, i)
	}
	c.used[n] = true
	return n
}

// baseVars are the expansions every section has: here (the directory of
// k's file), host_node_name and the importing environment's ENV_X.
func (c *conv) baseVars(k *supervisordconf.Key) map[string]any {
	vars := map[string]any{"host_node_name": c.opt.Hostname, "here": filepath.Dir(k.File)}
	c.fromOS = map[string]bool{}
	for name, v := range c.osEnv {
		vars["ENV_"+name] = v
		c.fromOS["ENV_"+name] = true
	}
	return vars
}

// section converts one supervisord section.
func (c *conv) section(s *supervisordconf.Section) {
	c.sec = s
	kd := kindOf(s.Name)
	if kd == nil || kd.convert == nil {
		why := "supervisord ignores this section"
		if kd != nil {
			why = plain(kd.why)
		}
		c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# not converted: [%s] of %s:%d — %s", s.Name, s.File, s.Line, why))
		for _, k := range s.Keys {
			c.res.trailer = append(c.res.trailer, "#   "+display(k, k.Value))
			c.res.NotConverted++
		}
		return
	}
	kd.convert(c, s)
}

// keys converts the keys of the current section with rules; keep says
// which expansions stay for usrsvc.
func (c *conv) keys(rules []rule, keep func(name, format string) bool) {
	for _, k := range c.sec.Keys {
		var r *rule
		for i := range rules {
			if rules[i].key == k.Name {
				r = &rules[i]
			}
		}
		if r == nil {
			c.notConverted(k, k.Value, "not a supervisord key of ["+c.sec.Kind()+"]: supervisord ignores it")
			continue
		}
		if r.conv == nil {
			continue
		}
		vars := c.vars
		if vars == nil {
			vars = c.baseVars(k)
		} else {
			vars["here"] = filepath.Dir(k.File)
		}
		v, used, err := supervisordconf.Expand(k.Value, vars, keep)
		frozen := c.frozen(used)
		if k.Name == "environment" && c.progEnvOK {
			v, frozen, err = c.progEnv, c.progEnvFrozen, nil
		}
		if err != nil {
			c.notConverted(k, k.Value, "supervisord cannot expand it either: "+err.Error())
			continue
		}
		if keep != nil {
			v = strings.NewReplacer("%(process_num)s", "%(process_num)d", "%(process_num)i", "%(process_num)d").Replace(v)
		}
		r.conv(c, k, v)
		if len(frozen) > 0 && k.Name != "password" {
			c.out.lines = append(c.out.lines, fmt.Sprintf("# (%s: %s expanded as on this machine when imported)", k.Name, strings.Join(slices.Compact(frozen), ", ")))
		}
	}
}

// frozen lists the expansions of used whose value is the importing
// machine's, not the configuration's.
func (c *conv) frozen(used []string) []string {
	var out []string
	for _, u := range used {
		if u == "host_node_name" || c.fromOS[u] {
			out = append(out, "%("+u+")s")
		}
	}
	return out
}

// set writes key = value for the supervisord key k (whose value is v).
func (c *conv) set(k *supervisordconf.Key, v, key, value string) {
	c.setIn(c.out, k, v, key, value)
}

func (c *conv) setIn(out *section, k *supervisordconf.Key, v, key, value string) {
	text, ok := valueText(value)
	if !ok {
		c.notConverted(k, v, "the value cannot be written in usrsvc's syntax (it holds both quote characters at its ends, or a line break)")
		return
	}
	for i, l := range out.lines {
		if strings.HasPrefix(l, key+" = ") {
			out.lines[i] = key + " = " + text
			return
		}
	}
	out.lines = append(out.lines, key+" = "+text)
}

// note adds a comment line to the current section.
func (c *conv) note(format string, args ...any) {
	c.out.lines = append(c.out.lines, "# "+fmt.Sprintf(format, args...))
}

// notConverted writes the "# not converted:" comment of k.
func (c *conv) notConverted(k *supervisordconf.Key, v, why string) {
	c.res.NotConverted++
	line := "# not converted: " + display(k, v) + " — " + plain(why)
	if c.out == nil {
		c.res.trailer = append(c.res.trailer, line)
		return
	}
	c.out.lines = append(c.out.lines, line)
}

// display is "key = value" for a comment: one line, passwords hidden.
func display(k *supervisordconf.Key, v string) string {
	if k.Name == "password" || strings.Contains(k.Name, "password") {
		return k.Name + " = (not shown)"
	}
	return k.Name + " = " + strings.Join(strings.Fields(v), " ")
}

// plain removes Markdown's backquotes from a rule's text.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// program converts a [program:x] section.
func (c *conv) program(s *supervisordconf.Section) {
	sdName := s.Arg()
	c.name = c.names[sdName]
	c.out = &section{header: "[Program:" + c.name + "]", file: c.name + ".cfg",
		comments: []string{fmt.Sprintf("# [%s] of %s:%d", s.Name, s.File, s.Line)}}
	if c.name != sdName {
		c.out.comments = append(c.out.comments, fmt.Sprintf("# (%q is not a usrsvc program name: letters, digits, _ . - only)", sdName))
	}
	c.out.lines = []string{"defaults = supervisord"}
	group := sdName
	if g, ok := c.groups[sdName]; ok {
		group = g
	}
	first := &supervisordconf.Key{File: s.File}
	if len(s.Keys) > 0 {
		first = s.Keys[0]
	}
	c.vars = c.baseVars(first)
	c.vars["program_name"], c.vars["group_name"] = sdName, group
	c.numprocs, c.redirect, c.stopSet = 1, false, false
	if k := s.Get("numprocs"); k != nil {
		if v, _, err := supervisordconf.Expand(k.Value, c.vars, nil); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 1 {
				c.numprocs = n
			}
		}
	}
	c.vars["numprocs"] = c.numprocs
	start := 0
	if k := s.Get("numprocs_start"); k != nil {
		start, _ = strconv.Atoi(strings.TrimSpace(k.Value))
	}
	var keep func(name, format string) bool
	if c.numprocs > 1 {
		keep = func(name, format string) bool {
			return name == "process_num" && (format == "d" || format == "02d" || format == "s" || format == "i")
		}
	} else {
		c.vars["process_num"] = start
	}
	if k := s.Get("redirect_stderr"); k != nil {
		c.redirect, _ = cfgval.Bool(k.Value)
	}
	// supervisord's environment comes first: ENV_X of the program's own
	// keys sees it, then the program's environment.
	for _, p := range c.sdEnv {
		c.vars["ENV_"+p.Key] = p.Value
		delete(c.fromOS, "ENV_"+p.Key)
	}
	c.progEnv, c.progEnvOK, c.progEnvFrozen = "", false, nil
	if k := s.Get("environment"); k != nil {
		c.vars["here"] = filepath.Dir(k.File)
		if v, used, err := supervisordconf.Expand(k.Value, c.vars, keep); err == nil {
			c.progEnv, c.progEnvOK, c.progEnvFrozen = v, true, c.frozen(used)
			if pairs, err := supervisordconf.Pairs(v); err == nil {
				for _, p := range pairs {
					c.vars["ENV_"+p.Key] = p.Value
					delete(c.fromOS, "ENV_"+p.Key)
				}
			}
		}
	}
	hasCommand := s.Get("command") != nil
	c.keys(kindOf("program").rules, keep)
	c.vars, c.progEnvOK = nil, false
	if !hasCommand {
		c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# not converted: [%s] of %s:%d — it has no command (supervisord refuses it)", s.Name, s.File, s.Line))
		c.res.NotConverted++
		return
	}
	c.res.programs = append(c.res.programs, c.out)
	c.res.Programs++
}

// usrsvcExpands are the program keys in which usrsvc expands
// %(process_num)d itself.
var usrsvcExpands = []string{"command", "stdout_logfile", "stderr_logfile", "environment"}

// perInstance refuses %(process_num) in a key usrsvc does not expand it in.
func (c *conv) perInstance(k *supervisordconf.Key, v string) bool {
	if strings.Contains(v, "%(process_num)") && !slices.Contains(usrsvcExpands, k.Name) {
		c.notConverted(k, v, "usrsvc expands %(process_num)d per instance only in command, stdout, stderr and [[Env]] values")
		return true
	}
	return false
}

// shells are the shells whose "-c LINE" becomes useshell.
var shells = []string{"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"}

// titles are programs that rename their process, and the title usrsvc finds
// them by.
var titles = map[string]string{
	"nginx":   `^nginx: master process`,
	"php-fpm": `^php-fpm: master process`,
}

func (c *conv) command(k *supervisordconf.Key, v string) {
	args, err := supervisordconf.Split(v)
	if err != nil || len(args) == 0 {
		why := "it is empty"
		if err != nil {
			why = err.Error()
		}
		c.notConverted(k, v, "supervisord cannot run it either: "+why)
		return
	}
	if len(args) == 3 && slices.Contains(shells, args[0]) && args[1] == "-c" {
		if last, why, pipeline, err := c.shell.ShellArgs(args[2], c.opt.Home); err == nil && !pipeline {
			c.set(k, v, "useshell", "true")
			c.set(k, v, "command", args[2])
			if len(last) > 0 {
				c.note("(%s -c LINE: usrsvc runs LINE with bash and finds the program by its last command, %s)", args[0], last[0])
				c.title(last[0])
			} else {
				c.note("(%s -c LINE: usrsvc runs LINE with bash; write a proctitle_re that matches the program it runs: %s)", args[0], why)
				c.res.Warnings = append(c.res.Warnings, fmt.Sprintf("[Program:%s] needs a proctitle_re (%s)", c.name, why))
			}
			return
		}
	}
	cmd := joinQuoted(args)
	if got, err := c.shell.Args(cmd, c.opt.Home); err != nil || !slices.Equal(got, args) {
		c.notConverted(k, v, fmt.Sprintf("usrsvc would not run the same arguments (%q)", cmd))
		return
	}
	c.set(k, v, "command", cmd)
	for _, a := range args {
		if strings.ContainsAny(a, "$`><|&*?") || strings.HasPrefix(a, "~") {
			c.note("(%s is a plain argument for supervisord, which runs no shell: quoted so that usrsvc passes it as is; useshell = true runs a shell)", shellQuote(a))
			break
		}
	}
	c.title(args[0])
}

// title sets the proctitle_re of a program that renames its process.
func (c *conv) title(executable string) {
	base := filepath.Base(executable)
	if strings.HasPrefix(base, "php-fpm") {
		base = "php-fpm"
	}
	if re, ok := titles[base]; ok {
		c.out.lines = append(c.out.lines, "proctitle_re = "+re)
		c.note("(%s renames its master process: usrsvc finds it by that title)", base)
	}
}

func (c *conv) processName(k *supervisordconf.Key, v string) {
	want := c.sec.Arg()
	if c.numprocs > 1 {
		want += "_%(process_num)02d"
	}
	if v == want {
		return // what usrsvc names them
	}
	names := c.name
	if c.numprocs > 1 {
		names = fmt.Sprintf("%s_00 … %s_%02d", c.name, c.name, c.numprocs-1)
	}
	c.notConverted(k, v, "usrsvc names the instances itself: "+names)
}

func (c *conv) numprocsKey(k *supervisordconf.Key, v string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil || n < 1:
		c.notConverted(k, v, "not a number ≥ 1 (supervisord refuses it too)")
	case n > 1:
		c.set(k, v, "numprocs", strconv.Itoa(n))
	}
}

func (c *conv) numprocsStart(k *supervisordconf.Key, v string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		c.notConverted(k, v, "not a number (supervisord refuses it too)")
	case n != 0 && c.numprocs > 1:
		c.notConverted(k, v, fmt.Sprintf("usrsvc numbers the instances from 0: %%(process_num) is %d less than under supervisord", n))
	case n != 0:
		c.note("(numprocs_start = %d: %%(process_num) expanded to %d)", n, n)
	}
}

func (c *conv) startsecs(k *supervisordconf.Key, v string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil || n < 0:
		c.notConverted(k, v, "not a number of seconds ≥ 0 (supervisord refuses it too)")
	case n == 0:
		c.set(k, v, "success_seconds", "0.1")
		c.note("(startsecs = 0: usrsvc watches a start for at least a moment)")
	default:
		c.set(k, v, "success_seconds", strconv.Itoa(n))
	}
}

func (c *conv) startretries(k *supervisordconf.Key, v string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil || n < 0:
		c.notConverted(k, v, "not a number ≥ 0 (supervisord refuses it too)")
	case n == 0:
		c.notConverted(k, v, "maxrestarts = 0 means unlimited in usrsvc; autorestart = false never restarts")
	default:
		c.set(k, v, "maxrestarts", strconv.Itoa(n))
	}
}

func (c *conv) autorestart(k *supervisordconf.Key, v string) {
	if strings.EqualFold(strings.TrimSpace(v), "unexpected") {
		c.set(k, v, "autorestart", "unexpected")
		return
	}
	boolKey("autorestart")(c, k, v)
}

func (c *conv) exitcodes(k *supervisordconf.Key, v string) {
	var codes []string
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 255 {
			c.notConverted(k, v, "not a list of exit codes from 0 to 255 (supervisord refuses it too)")
			return
		}
		codes = append(codes, strconv.Itoa(n))
	}
	c.set(k, v, "exit_codes", strings.Join(codes, ", "))
}

func (c *conv) stopsignal(k *supervisordconf.Key, v string) {
	name := signalName(v)
	if !slices.Contains(signals, name) {
		c.notConverted(k, v, "usrsvc's stop_signal is one of "+strings.Join(signals, ", "))
		return
	}
	c.set(k, v, "stop_signal", name)
}

func (c *conv) asGroup(k *supervisordconf.Key, v string) {
	b, ok := cfgval.Bool(v)
	switch {
	case !ok:
		c.notConverted(k, v, "not a boolean (supervisord refuses it too)")
	case b && !c.stopSet:
		c.stopSet = true
		c.set(k, v, "stop_group", "true")
		if k.Name == "killasgroup" {
			c.note("(killasgroup: usrsvc's stop_group sends the stop signal to the whole group too, not only SIGKILL)")
		}
	}
}

func (c *conv) redirectStderr(k *supervisordconf.Key, v string) {
	b, ok := cfgval.Bool(v)
	switch {
	case !ok:
		c.notConverted(k, v, "not a boolean (supervisord refuses it too)")
	case b:
		c.set(k, v, "stderr", "stdout")
	}
}

// logfile converts stdout_logfile or stderr_logfile to the key stream.
func logfile(stream string) func(c *conv, k *supervisordconf.Key, v string) {
	return func(c *conv, k *supervisordconf.Key, v string) {
		p := strings.TrimSpace(v)
		switch strings.ToLower(p) {
		case "auto":
			return // usrsvc's default log
		case "none", "off":
			c.set(k, v, stream, "/dev/null")
			return
		case "syslog":
			c.notConverted(k, v, whySyslog)
			return
		}
		switch {
		case stream == "stderr" && c.redirect:
			c.notConverted(k, v, "supervisord ignores it: redirect_stderr = true")
		case p == "/dev/stdout" || p == "/dev/stderr" || strings.HasPrefix(p, "/dev/fd/") || strings.HasPrefix(p, "/proc/self/fd/"):
			c.notConverted(k, v, "programs are detached: there is no manager output to share; usrsvc's default log is used ("+StateDir+"/logs/"+c.name+".log, usrsvc tail -f "+c.name+")")
		case !filepath.IsAbs(p) && !strings.HasPrefix(p, "~/"):
			c.notConverted(k, v, "usrsvc needs an absolute path (supervisord takes it from its working directory)")
		default:
			c.set(k, v, stream, p)
		}
	}
}

// environment converts supervisord's environment to [[Env]] lines: the
// program's, or with [supervisord] the defaults'.
func (c *conv) environment(k *supervisordconf.Key, v string) {
	pairs, err := supervisordconf.Pairs(v)
	if err != nil {
		c.notConverted(k, v, "supervisord cannot read it either: "+err.Error())
		return
	}
	out := c.out
	if c.sec.Name == "supervisord" {
		out = c.res.defaults
	}
	for _, p := range pairs {
		one := &supervisordconf.Key{Name: "environment", File: k.File, Line: k.Line}
		if !validEnvName(p.Key) {
			c.notConverted(one, p.Key+"="+p.Value, "not a variable name usrsvc accepts (letters, digits and _, not starting with a digit)")
			continue
		}
		text, ok := valueText(p.Value)
		if !ok {
			c.notConverted(one, p.Key+"="+p.Value, "the value cannot be written in usrsvc's syntax")
			continue
		}
		out.env = append(out.env, p.Key+" = "+text)
	}
}

func validEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func (c *conv) directory(k *supervisordconf.Key, v string) {
	if c.perInstance(k, v) {
		return
	}
	p := strings.TrimSpace(v)
	if c.sec.Name == "supervisord" {
		if s := c.sec.Get("nodaemon"); s != nil {
			if b, _ := cfgval.Bool(s.Value); b {
				c.notConverted(k, v, "supervisord ignores it with nodaemon = true")
				return
			}
		}
		c.setIn(c.res.defaults, k, v, "directory", p)
		return
	}
	c.set(k, v, "directory", p)
}

func (c *conv) umask(k *supervisordconf.Key, v string) {
	m, ok := octal(v)
	if !ok {
		c.notConverted(k, v, "not an octal umask (supervisord refuses it too)")
		return
	}
	if c.sec.Name == "supervisord" {
		c.setIn(c.res.defaults, k, v, "umask", m)
		return
	}
	c.set(k, v, "umask", m)
}

func (c *conv) serverurl(k *supervisordconf.Key, v string) {
	if strings.EqualFold(strings.TrimSpace(v), "auto") {
		return
	}
	c.notConverted(k, v, "for supervisor.childutils in the program: usrsvcweb speaks the same XML-RPC, point it there")
}

// group converts a [group:x] section.
func (c *conv) group(s *supervisordconf.Section) {
	name := s.Arg()
	if c.used[name] {
		name += "-group"
	}
	name = c.uniqueName(name)
	c.out = &section{header: "[Group:" + name + "]", file: name + ".group.cfg",
		comments: []string{fmt.Sprintf("# [%s] of %s:%d", s.Name, s.File, s.Line)}}
	if name != s.Arg() {
		c.out.comments = append(c.out.comments, fmt.Sprintf("# (renamed from %q: a program has that name, or it is not a usrsvc name)", s.Arg()))
	}
	c.keys(kindOf("group").rules, nil)
	c.res.groups = append(c.res.groups, c.out)
	c.res.Groups++
}

func (c *conv) groupPrograms(k *supervisordconf.Key, v string) {
	var names []string
	for _, p := range cfgval.List(strings.ReplaceAll(v, "\n", " ")) {
		n, ok := c.names[p]
		if !ok {
			c.notConverted(k, p, "no [program:"+p+"] (supervisord refuses the group)")
			continue
		}
		names = append(names, n)
	}
	if len(names) > 0 {
		c.set(k, v, "programs", strings.Join(names, ", "))
	}
}

// supervisord converts [supervisord]: notes in [Main], and what every
// program inherits in the defaults.
func (c *conv) supervisord(s *supervisordconf.Section) {
	c.out = c.res.main
	c.out.lines = append(c.out.lines, fmt.Sprintf("# [supervisord] of %s:%d:", s.File, s.Line))
	c.keys(kindOf("supervisord").rules, nil)
}

// notes converts a section whose every key is a note ([supervisorctl]).
func (c *conv) notes(s *supervisordconf.Section) {
	c.out = &section{}
	c.keys(kindOf(s.Kind()).rules, nil)
	c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# [%s] of %s:%d:", s.Name, s.File, s.Line))
	c.res.trailer = append(c.res.trailer, c.out.lines...)
	c.out = nil
}

// include converts [include]: with Options.Include the files were read.
func (c *conv) include(s *supervisordconf.Section) {
	if s.File != c.cfg.Path {
		return
	}
	c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# [include] of %s:%d:", s.File, s.Line))
	n := 0
	for _, inc := range c.cfg.Includes {
		n += len(inc.Files)
	}
	if c.opt.Include {
		for _, inc := range c.cfg.Includes {
			c.res.trailer = append(c.res.trailer, fmt.Sprintf("# files = %s: converted above (%d files)", inc.Pattern, len(inc.Files)))
		}
		return
	}
	for _, inc := range c.cfg.Includes {
		c.res.trailer = append(c.res.trailer, fmt.Sprintf("# not converted: files = %s — not followed (%d files): usrsvc import --include converts them too", inc.Pattern, len(inc.Files)))
		c.res.NotConverted++
	}
	if n > 0 {
		c.res.Warnings = append(c.res.Warnings, fmt.Sprintf("[include] names %d files, not converted: add --include to convert them too", n))
	}
}

// inetServer reads [inet_http_server]: [Web] is written at the end.
func (c *conv) inetServer(s *supervisordconf.Section) {
	c.out = &section{}
	c.inetSection = s
	c.keys(kindOf("inet_http_server").rules, nil)
	c.res.trailer = append(c.res.trailer, c.out.lines...)
	c.out = nil
}

func (c *conv) inetPort(k *supervisordconf.Key, v string) {
	v = strings.TrimSpace(v)
	host, port := "", v
	if i := strings.LastIndex(v, ":"); i >= 0 {
		host, port = v[:i], v[i+1:]
	}
	if host == "*" {
		host = ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		c.notConverted(k, v, "not HOST:PORT (supervisord refuses it too)")
		return
	}
	c.webPort = host + ":" + port
}

func (c *conv) inetUsername(k *supervisordconf.Key, v string) { c.webUser = strings.TrimSpace(v) }

func (c *conv) inetPassword(k *supervisordconf.Key, v string) { c.webPassword = k }

// unixServer reads [unix_http_server].
func (c *conv) unixServer(s *supervisordconf.Section) {
	c.out = &section{}
	c.keys(kindOf("unix_http_server").rules, nil)
	if len(c.out.lines) > 0 {
		c.res.trailer = append(c.res.trailer, "", fmt.Sprintf("# [%s] of %s:%d:", s.Name, s.File, s.Line))
		c.res.trailer = append(c.res.trailer, c.out.lines...)
	}
	c.out = nil
}

func (c *conv) unixFile(k *supervisordconf.Key, v string) {
	p := strings.TrimSpace(v)
	if strings.HasPrefix(p, "~/") && c.opt.Home != "" {
		p = filepath.Join(c.opt.Home, p[2:])
	}
	if !homePath(p, c.opt.Home) {
		c.notConverted(k, v, "usrsvcweb listens on unix:"+StateDir+"/usrsvcweb.sock (mode 0600); "+
			"supervisorctl -s unix://"+strings.Replace(StateDir, "~", c.opt.Home, 1)+"/usrsvcweb.sock reaches it")
		return
	}
	c.unixListen = "unix:" + filepath.Clean(p)
}

// finishWeb writes [Web] from the http server sections.
func (c *conv) finishWeb() {
	if c.unixListen == "" && c.inetSection == nil {
		return
	}
	w := &section{header: "[Web]"}
	if c.unixListen != "" {
		w.lines = append(w.lines, "listen = "+c.unixListen)
	}
	if s := c.inetSection; s != nil && c.webPort != "" {
		w.lines = append(w.lines, fmt.Sprintf("# [inet_http_server] of %s:%d: usrsvcweb listens on TCP only with a password,", s.File, s.Line),
			"# and usrsvc import never writes one into a file. Make this file private",
			"# (chmod 600), then set these lines:")
		if c.unixListen != "" {
			w.lines = append(w.lines, "# (usrsvcweb listens on one address: give it this one, or run a second one with --listen "+c.webPort+")")
		}
		user := c.webUser
		if user == "" {
			user = "USER"
		}
		w.lines = append(w.lines, "# listen = "+c.webPort, "# username = "+user)
		where := "(plain, {SHA} + hex SHA-1, or a bcrypt hash)"
		if k := c.webPassword; k != nil {
			where = fmt.Sprintf("(the one at %s:%d, or its bcrypt hash)", k.File, k.Line)
		}
		w.lines = append(w.lines, "# password = "+where)
		c.res.NotConverted += 2
		if c.webPassword != nil {
			c.res.NotConverted++
		}
		c.res.Warnings = append(c.res.Warnings, fmt.Sprintf("[inet_http_server] %s: the [Web] lines are commented; "+
			"usrsvcweb needs the password, which import never writes: add it by hand in a file only you can read", c.webPort))
	}
	if len(w.lines) > 0 {
		c.res.web = w
	}
}
