package usrsvc

import (
	"regexp"
	"testing"
)

// The loops that check names and numbers agree with the regexps they
// replace.
var (
	programNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	secondsRE     = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
)

func checkNameLoops(t *testing.T, s string) {
	t.Helper()
	if got, want := validProgramName(s), programNameRE.MatchString(s); got != want {
		t.Errorf("validProgramName(%q) = %v, want %v", s, got, want)
	}
	if got, want := validEnvName(s), envNameRE.MatchString(s); got != want {
		t.Errorf("validEnvName(%q) = %v, want %v", s, got, want)
	}
	if got, want := decimalSeconds(s), secondsRE.MatchString(s); got != want {
		t.Errorf("decimalSeconds(%q) = %v, want %v", s, got, want)
	}
}

var nameLoopSeeds = []string{"", "web", "web-1.2_x", "9lives", "_x", "a b", "é", "web/x", "0", "5", "0.5", ".5", "5.",
	"+1", "-1.5", ".", "+", "-.", "1.2.3", "1e3", "0x10", "Inf", "NaN", " 5", "5 ", "1_000", "--1", "+.5"}

func TestNameLoops(t *testing.T) {
	for _, s := range nameLoopSeeds {
		checkNameLoops(t, s)
	}
}

func FuzzNameLoops(f *testing.F) {
	for _, s := range nameLoopSeeds {
		f.Add(s)
	}
	f.Fuzz(checkNameLoops)
}
