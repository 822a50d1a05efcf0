package usrsvc

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// MatchTitle's literal fast path agrees with the default regexp.
func FuzzMatchTitle(f *testing.F) {
	f.Add("python3 app.py", "/usr/bin/python3 app.py")
	f.Add("sleep 10", "sleep 10 ")
	f.Add("a.b", "axb")
	f.Add("x", "/x")
	f.Add("x y", "zx y")
	f.Fuzz(func(t *testing.T, command, title string) {
		args := strings.Fields(command)
		// The loader refuses invalid UTF-8; U+FFFD in a command would match
		// any invalid byte of a title through the regexp only.
		if len(args) == 0 || !utf8.ValidString(command) || strings.ContainsRune(command+title, utf8.RuneError) {
			return
		}
		pc := &ProgramConfig{}
		pc.setDefaultTitle(args)
		if got, want := pc.MatchTitle(title), pc.TitleRegexp().MatchString(title); got != want {
			t.Fatalf("MatchTitle(%q) = %v, the regexp %s says %v", title, got, pc.TitleRegexp(), want)
		}
	})
}

// An argument that is not UTF-8 still gives a default regexp that compiles
// and matches the title.
func TestDefaultTitleNotUTF8(t *testing.T) {
	t.Parallel()
	pc := NewProgram("x", "prog", "caf\xe9", "\uFFFD")
	re := pc.TitleRegexp()
	if re == nil {
		t.Fatal("no regexp")
	}
	if !re.MatchString("/usr/bin/prog caf\xe9 \uFFFD") || !pc.MatchTitle("/usr/bin/prog caf\xe9 \uFFFD") {
		t.Fatalf("%s does not match", re)
	}
}
