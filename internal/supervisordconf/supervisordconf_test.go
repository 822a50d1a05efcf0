package supervisordconf

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sections flattens a parse into name → [key, value] pairs, in order.
func sections(ss []*Section) [][]any {
	var out [][]any
	for _, s := range ss {
		var keys [][]string
		for _, k := range s.Keys {
			keys = append(keys, []string{k.Name, k.Value})
		}
		out = append(out, []any{s.Name, keys})
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	f := Parse("x.conf", []byte("; comment\n[program:web]\ncommand = /bin/cat ; a comment\n"+
		"directory=/tmp;no comment\nCommand : again\nenvironment =\n  A=\"1\",\n\n  B=\"2\"   # trailing\n\n"+
		"url=http://x/#frag\n [ program:odd ]\n[supervisord]\n# comment\n\tnodaemon = true\n"))
	require.Empty(t, f.Problems)
	require.Len(t, f.Sections, 2)
	s := f.Sections[0]
	assert.Equal(t, "program:web", s.Name)
	assert.Equal(t, "program", s.Kind())
	assert.Equal(t, "web", s.Arg())
	assert.Equal(t, 2, s.Line)
	assert.Equal(t, "again", s.Get("command").Value, "keys are lower-cased; the last one wins")
	assert.Equal(t, 5, s.Get("command").Line)
	assert.Equal(t, "/tmp;no comment", s.Get("directory").Value)
	assert.Equal(t, "\nA=\"1\",\n\nB=\"2\"", s.Get("environment").Value)
	assert.Equal(t, "http://x/#frag\n[ program:odd ]", s.Get("url").Value, "an indented line continues the value")
	assert.Equal(t, "true", f.Sections[1].Get("nodaemon").Value)

	f = Parse("y.conf", []byte("key=before\n[a]\nnovalue\n=x\n[b]\nk=v\r\n"))
	assert.Equal(t, []string{
		`y.conf:1: "key=before" comes before any [section] header`,
		`y.conf:3: "novalue" is not key = value`,
		`y.conf:4: "=x" has no key before its '='`,
	}, f.Problems)
	assert.Equal(t, "v", f.Sections[1].Get("k").Value)
}

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := map[string]any{"program_name": "web", "process_num": 3, "here": "/etc", "ENV_HOME": "/home/u"}
	for in, want := range map[string]string{
		"%(program_name)s_%(process_num)02d":                                                   "web_03",
		"%(process_num)d %(process_num)3d|%(process_num)-3d|%(process_num).3d|%(process_num)x": "3   3|3  |003|3",
		"100%% %(here)s/%(ENV_HOME)s":                                                          "100% /etc//home/u",
		"%(program_name)5s|%(program_name)r":                                                   "  web|'web'",
		"no expansion":                                                                         "no expansion",
	} {
		got, _, err := Expand(in, vars, nil)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	got, used, err := Expand("%(program_name)s-%(process_num)02d-%(process_num)d", vars, func(name, _ string) bool { return name == "process_num" })
	require.NoError(t, err)
	assert.Equal(t, "web-%(process_num)02d-%(process_num)d", got)
	assert.Equal(t, []string{"program_name"}, used)
	for _, bad := range []string{"100%", "%s", "%(nope)s", "%(program_name)d", "%(here)", "%(here"} {
		_, _, err := Expand(bad, vars, nil)
		assert.Error(t, err, bad)
	}
}

func TestSplitAndPairs(t *testing.T) {
	t.Parallel()
	args, err := Split(`/usr/sbin/nginx -g "daemon off;" a\ b 'c d' "e\"f\g" $HOME > x ~/y ""`)
	require.NoError(t, err)
	assert.Equal(t, []string{"/usr/sbin/nginx", "-g", "daemon off;", "a b", "c d", `e"f\g`, "$HOME", ">", "x", "~/y", ""}, args)
	_, err = Split(`a "b`)
	assert.Error(t, err)

	pairs, err := Pairs(`A="1",B='two, 2', PATH="/usr/bin:/bin",C=x # comment`)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"A", "1"}, {"B", "two, 2"}, {"PATH", "/usr/bin:/bin"}, {"C", "x"}}, pairs)
	pairs, err = Pairs("A=1,A=2,B=3")
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"A", "2"}, {"B", "3"}}, pairs)
	_, err = Pairs("A=x@y")
	assert.Error(t, err, "an unquoted @ splits the value, as in supervisord")
	pairs, err = Pairs("")
	require.NoError(t, err)
	assert.Empty(t, pairs)
}

func TestLoadIncludes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	write("main.conf", "[supervisord]\nlogfile=%(here)s/sd.log\n[include]\nfiles = conf.d/*.conf %(here)s/extra.ini none/*.conf\n"+
		"[program:a]\ncommand=a\n[DEFAULT]\nautostart=false\n")
	write("conf.d/2.conf", "[program:b]\ncommand=b2\n")
	write("conf.d/1.conf", "[program:b]\ncommand=b1\nstartsecs=5\n[include]\nfiles=nested/*.conf\n")
	write("extra.ini", "[program:a]\ncommand=a2\n")

	c, err := Load(filepath.Join(dir, "main.conf"), false, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "main.conf")}, c.Files)
	require.Len(t, c.Includes, 3)
	assert.Equal(t, []string{filepath.Join(dir, "conf.d/1.conf"), filepath.Join(dir, "conf.d/2.conf")}, c.Includes[0].Files)
	assert.Nil(t, c.Section("program:b"), "not followed")
	assert.Contains(t, strings.Join(c.Problems, "\n"), "no file matches the include")
	assert.Equal(t, "false", c.Section("program:a").Get("autostart").Value, "[DEFAULT] applies to every section")

	c, err = Load(filepath.Join(dir, "main.conf"), true, nil)
	require.NoError(t, err)
	assert.Len(t, c.Files, 4)
	assert.Equal(t, "b2", c.Section("program:b").Get("command").Value, "files in sorted order, later wins")
	assert.Equal(t, "5", c.Section("program:b").Get("startsecs").Value)
	assert.Equal(t, "a2", c.Section("program:a").Get("command").Value)
	assert.Equal(t, filepath.Join(dir, "extra.ini"), c.Section("program:a").Get("command").File)
	require.Len(t, c.Ignored, 1, "an included file cannot include")
}

// The parser, the splitters and the expansion agree with supervisord's own
// code (Debian's supervisor package, which .ci/run installs) on tricky
// inputs.
func TestAgreesWithSupervisord(t *testing.T) {
	t.Parallel()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import supervisor.options").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("supervisord's Python code is missing (%v): .ci/run installs the supervisor package", err)
		}
		t.Skipf("supervisord's Python code is not installed (%v): apt-get install supervisor", err)
	}
	type tc struct {
		Kind string         `json:"kind"`
		Text string         `json:"text"`
		Vars map[string]any `json:"vars,omitempty"`
	}
	cases := []tc{}
	for _, s := range iniSeeds {
		cases = append(cases, tc{Kind: "ini", Text: s})
	}
	for _, s := range splitSeeds {
		cases = append(cases, tc{Kind: "split", Text: s}, tc{Kind: "pairs", Text: s})
	}
	vars := map[string]any{"program_name": "web", "process_num": 7, "here": "/etc/sd", "ENV_X": "ex"}
	for _, s := range expandSeeds {
		cases = append(cases, tc{Kind: "expand", Text: s, Vars: vars})
	}
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", pythonOracle)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	require.NoError(t, err, "the Python oracle failed: %s", out)
	var want []json.RawMessage
	require.NoError(t, json.Unmarshal(out, &want))
	require.Len(t, want, len(cases))
	for i, c := range cases {
		var got any
		switch c.Kind {
		case "ini":
			f := Parse("t.conf", []byte(c.Text))
			if len(f.Problems) > 0 {
				got = map[string]bool{"error": true}
			} else {
				got = sections(f.Sections)
			}
		case "split":
			args, err := Split(c.Text)
			got = orError(args, err)
		case "pairs":
			p, err := Pairs(c.Text)
			var kv [][]string
			for _, x := range p {
				kv = append(kv, []string{x.Key, x.Value})
			}
			got = orError(kv, err)
		case "expand":
			s, _, err := Expand(c.Text, c.Vars, nil)
			got = orError(s, err)
		}
		g, err := json.Marshal(got)
		require.NoError(t, err)
		assert.JSONEq(t, string(want[i]), string(g), "%s of %q", c.Kind, c.Text)
	}
}

func orError[T any](v T, err error) any {
	if err != nil {
		return map[string]bool{"error": true}
	}
	if b, _ := json.Marshal(v); string(b) == "null" {
		return []any{}
	}
	return v
}

// pythonOracle reads the cases on stdin and answers what supervisord's code
// makes of each.
const pythonOracle = `
import json, shlex, sys
from supervisor.options import UnhosedConfigParser, expand
from supervisor.datatypes import dict_of_key_value_pairs
out = []
for c in json.load(sys.stdin):
    try:
        if c["kind"] == "ini":
            p = UnhosedConfigParser()
            p.read_string(c["text"])
            out.append([[name, [[k, v] for k, v in sec.items()]] for name, sec in p._sections.items()])
        elif c["kind"] == "split":
            out.append(shlex.split(c["text"]))
        elif c["kind"] == "pairs":
            out.append([[k, v] for k, v in dict_of_key_value_pairs(c["text"]).items()])
        else:
            out.append(expand(c["text"], c["vars"], "x"))
    except Exception:
        out.append({"error": True})
json.dump(out, sys.stdout)
`

var iniSeeds = []string{
	"[program:web]\ncommand=/bin/cat\n",
	"[a]\nk = v ; c\nk2 = v;c\nk3=x #c\nk4=x#c\n",
	"[a]\nk =\n  line1\n\n  line2\n\n\nother: 2\n",
	"[a]\n  k = indented\n  k2 = same indent\n",
	"[a]\nk = v\n    [b]\n",
	"; c\n# c\n[a b:c d]\nX=1\nx=2\n",
	"[a]\nk=1\n[b]\nk=2\n[a]\nj=3\n",
	"[a]\nk=v\r\nj = w \r\n",
	"k=v\n",
	"[a]\nnovalue\n",
	"[a]\n=v\n",
	"[a]\nurl = http://x:80/p?q=1;r#f\n",
	"[a]\nk = a\n  ; comment inside\n  b\n",
	"[a]\nk = 'quoted'   \n",
	"[]\n",
	"[a]]\nk=1\n",
	"[a]\nk=1\n\t\tcontinued\n",
}

var splitSeeds = []string{
	`/bin/cat`,
	`a "b c" 'd e' f\ g`,
	`nginx -g "daemon off;"`,
	`a "x\"y\z" 'p\q'`,
	`$HOME > x | y && z ~/a`,
	`A="1",B="2"`,
	`A='one, two',PATH="/a:/b"`,
	`A=1 , B=2`,
	`A=x@y`,
	`A="",B=x`,
	`A=1,B=2 # c`,
	`a "b`,
	`x\`,
	``,
	"A=\"1\",\nB=\"2\"",
	`KEY=/path/to-x.y+z(1):2`,
}

var expandSeeds = []string{
	"%(program_name)s_%(process_num)02d",
	"%(process_num)d|%(process_num)5d|%(process_num)-5d|%(process_num)05d|%(process_num).3d|%(process_num)+d",
	"%(process_num)x %(process_num)X %(process_num)o %(process_num)i %(process_num)u",
	"%(program_name)8s|%(program_name)-8s|%(program_name).2s|%(program_name)r",
	"100%%",
	"100%",
	"%(nope)s",
	"%(program_name)d",
	"%(here)s/%(ENV_X)s",
	"%(process_num)s",
	"%(process_num)ld",
}
