package configobj

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseValues(t *testing.T) {
	tests := []struct {
		line, want string
	}{
		{`command = sleep 1; echo`, `sleep 1; echo`},
		{`url = http://x/#frag`, `http://x/#frag`},
		{`x = "a # b"  # c`, `a # b`},
		{`x = 'a ; b' ; c`, `a ; b`},
		{`x = "a"`, `a`},
		{`x = ''`, ``},
		{`x =`, ``},
		{`x =   # only a comment`, ``},
		{`x =#notacomment`, `#notacomment`},
		{`x = a#b`, `a#b`},
		{`x = a #b`, `a`},
		{`x = a	;b`, `a`},
		{`x = sh -c 'a # b'  # c`, `sh -c 'a # b'`},
		{`x = "/opt/my app/bin" --flag  # c`, `"/opt/my app/bin" --flag`},
		{`x = "a"b`, `"a"b`},
		{`x = a \# b`, `a \# b`},
		{`x = a = b`, `a = b`},
		{`  indented  =  spaced  `, `spaced`},
		{`x = it's`, `it's`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			f, err := Parse("f.cfg", []byte("[S]\n"+tt.line+"\n"))
			require.NoError(t, err)
			require.Len(t, f.Sections, 1)
			require.Len(t, f.Sections[0].Keys, 1)
			assert.Equal(t, tt.want, f.Sections[0].Keys[0].Value)
			assert.Equal(t, 2, f.Sections[0].Keys[0].Line)
		})
	}
}

func TestParseStructure(t *testing.T) {
	src := "\uFEFF# comment\r\n; other\r\n[Main]\r\npidfile = /p\r\n\r\n[Program:web]  # the web\r\n" +
		"command = x\r\n  [[Env]]\r\n  A = 1\r\n[[Monitor]]\r\nrss_limit = 5\r\n[Program:b]\ncommand=y"
	f, err := Parse("f.cfg", []byte(src))
	require.NoError(t, err)
	require.Len(t, f.Sections, 3)
	main, web, b := f.Sections[0], f.Sections[1], f.Sections[2]
	assert.Equal(t, "Main", main.Name)
	assert.Equal(t, 3, main.Line)
	assert.Equal(t, &Key{Name: "pidfile", Value: "/p", Line: 4}, main.Keys[0])
	assert.Equal(t, "Program:web", web.Name)
	assert.Equal(t, 6, web.Line)
	require.Len(t, web.Keys, 1)
	require.Len(t, web.Subs, 2)
	assert.Equal(t, "Env", web.Subs[0].Name)
	assert.Equal(t, 8, web.Subs[0].Line)
	assert.Equal(t, &Key{Name: "A", Value: "1", Line: 9}, web.Subs[0].Keys[0])
	assert.Equal(t, "Monitor", web.Subs[1].Name)
	assert.Equal(t, "5", web.Subs[1].Keys[0].Value)
	assert.Equal(t, "y", b.Keys[0].Value)
	assert.Equal(t, 13, b.Keys[0].Line)
}

func TestParseErrors(t *testing.T) {
	src := `key = before
[[Env]]
[Main
[Main]]
[[[x]]]
[]
[S] junk
[A]
x = 1
x = 2
bad line
= v
q = "unterminated
[[E]]
[[E]]
y = 1
[B]
` + "z = \xff\nn = a\x00b\n"
	f, err := Parse("f.cfg", []byte(src))
	var list ErrorList
	require.True(t, errors.As(err, &list))
	lines := map[int]string{}
	for _, e := range list {
		assert.Equal(t, "f.cfg", e.File)
		lines[e.Line] = e.Msg
	}
	assert.Contains(t, lines[1], `key "key" comes before any [Section]`)
	assert.Contains(t, lines[2], "subsection [[Env]] comes before any [Section]")
	assert.Contains(t, lines[3], "missing its closing ]")
	assert.Contains(t, lines[4], "unbalanced brackets")
	assert.Contains(t, lines[5], "only [Section] and [[Subsection]]")
	assert.Contains(t, lines[6], "has no name")
	assert.Contains(t, lines[7], `unexpected text "junk"`)
	assert.Contains(t, lines[10], `duplicate key "x" in [A] (first at line 9)`)
	assert.Contains(t, lines[11], "expected `key = value`")
	assert.Contains(t, lines[12], "missing key name")
	assert.Contains(t, lines[13], "unterminated quote")
	assert.Contains(t, lines[15], "duplicate subsection [[E]] in [A] (first at line 14)")
	assert.Contains(t, lines[18], "not valid UTF-8")
	assert.Contains(t, lines[19], "NUL byte")
	assert.Len(t, list, 14)
	assert.Contains(t, err.Error(), "f.cfg:10: duplicate key")
	// Everything that parsed is still there; the bad value is kept as Invalid.
	require.Len(t, f.Sections, 2)
	a := f.Sections[0]
	assert.Equal(t, "A", a.Name)
	require.Len(t, a.Keys, 2)
	assert.True(t, a.Keys[1].Invalid)
	require.Len(t, a.Subs, 1)
	assert.Empty(t, a.Subs[0].Keys, "keys after a duplicate subsection are skipped")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[Main]\npidfile = /x\n[Program:a]\ncommand = 'a b' # c\n[[Env]]\nA=1\n"))
	f.Add([]byte("[[x]]\n[a\n x = \"y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f", data)
		require.NotNil(t, file)
		var list ErrorList
		if err != nil {
			require.True(t, errors.As(err, &list))
			for _, e := range list {
				require.Positive(t, e.Line)
			}
		}
	})
}

// Key.Comment keeps the inline comment removed from a value, so a caller
// can tell that " ;..." was cut from it (a password).
func TestKeyComment(t *testing.T) {
	f, err := Parse("f.cfg", []byte("[S]\na = correct horse ;battery staple\nb = 'x ;y' # note\nc = plain\nd = # only\ne = sleep 1; echo\n"))
	require.NoError(t, err)
	k := f.Sections[0].Keys
	assert.Equal(t, "correct horse", k[0].Value)
	assert.Equal(t, ";battery staple", k[0].Comment)
	assert.Equal(t, "x ;y", k[1].Value)
	assert.Equal(t, "# note", k[1].Comment)
	assert.Empty(t, k[2].Comment)
	assert.Equal(t, "", k[3].Value)
	assert.Equal(t, "# only", k[3].Comment)
	assert.Empty(t, k[4].Comment, "a ; without a blank before it is no comment")
}
