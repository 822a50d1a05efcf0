package launch

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The functions that run in the forked processes (package child), besides
// the system-call wrappers they may call.
var childFuncs = []string{"forkIntermediate", "rawFork", "intermediate", "program", "execFailed", "report",
	"setupFailed", "rawExit"}

const childPkg = "github.com/usrsvc/usrsvc/internal/launch/child."

// Go cannot run Go code in a forked child: only raw system calls. This
// test disassembles the child's functions in this very test binary (so
// under the flags it was built with: -race, -cover, -gcflags) and fails on
// any call or jump to anything but syscall.RawSyscall, RawSyscall6 and the
// assembly system call under them, on any indirect call, and on any
// reference to the runtime (a bounds check's runtime.panicIndex, a stack
// check's morestack, the race detector's racefuncenter, a write barrier, a
// coverage counter's sync/atomic call...).
func TestChildCodeIsRawSystemCallsOnly(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(build.Default.GOROOT, "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("no go tool to disassemble this test binary with")
			}
			t.Skip("no go tool to disassemble this test binary with")
		}
	}
	names := make([]string, len(childFuncs))
	for i, f := range childFuncs {
		names[i] = regexp.QuoteMeta(childPkg + f)
	}
	pattern := "^(" + strings.Join(names, "|") + `|syscall\.RawSyscall6?)$`
	bin := os.Args[0]
	out, err := exec.Command(goTool, "tool", "objdump", "-s", pattern, bin).CombinedOutput()
	if err != nil && strings.Contains(string(out), "no symbol section") {
		// go test strips the binaries it runs (unless -c or a profile):
		// the same test binary again, built with the flags of this one.
		bin = rebuildTestBinary(t, goTool)
		out, err = exec.Command(goTool, "tool", "objdump", "-s", pattern, bin).CombinedOutput()
	}
	require.NoError(t, err, string(out))
	t.Logf("checked %s", bin)
	bad := childCodeProblems(string(out))
	assert.Empty(t, bad, "the forked processes' code must be raw system calls only")
	found := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^TEXT (\S+)\(SB\)`).FindAllStringSubmatch(string(out), -1) {
		found[m[1]] = true
	}
	for _, f := range []string{childPkg + "forkIntermediate", childPkg + "intermediate", "syscall.RawSyscall6"} {
		assert.True(t, found[f], "%s not found in the disassembly of %s:\n%s", f, os.Args[0], out)
	}
}

// childCodeProblems lists the instructions of an objdump listing that the
// child code must not have.
func childCodeProblems(listing string) []string {
	allowed := map[string]bool{
		"syscall.RawSyscall":                      true,
		"syscall.RawSyscall6":                     true,
		"internal/runtime/syscall/linux.Syscall6": true,
	}
	for _, f := range childFuncs {
		allowed[childPkg+f] = true
	}
	target := regexp.MustCompile(`\b(CALL|JMP|B|BL|JAL|BR|BLR)\s+([^\s(]+)\(SB\)`)
	indirect := regexp.MustCompile(`\b(CALL|BLR|JALR)\s+[^\s]*\b(AX|BX|CX|DX|SI|DI|R\d+)\b`)
	var bad []string
	fn := ""
	for _, line := range strings.Split(listing, "\n") {
		if name, ok := strings.CutPrefix(line, "TEXT "); ok {
			fn, _, _ = strings.Cut(name, "(SB)")
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		where := fn + ": " + strings.Join(strings.Fields(line), " ")
		if m := target.FindStringSubmatch(line); m != nil {
			sym := strings.TrimSuffix(m[2], ".abi0")
			if sym != fn && !allowed[sym] {
				bad = append(bad, where)
			}
			if strings.HasPrefix(fn, "syscall.") && allowed[sym] && sym != "internal/runtime/syscall/linux.Syscall6" && sym != "syscall.RawSyscall6" {
				bad = append(bad, where)
			}
			continue
		}
		if indirect.MatchString(line) || strings.Contains(line, "runtime.") && !strings.Contains(line, "internal/runtime/syscall/linux.Syscall6") {
			bad = append(bad, where)
		}
	}
	return bad
}

// The check itself: what it must refuse, it refuses.
func TestChildCodeProblems(t *testing.T) {
	t.Parallel()
	listing := `TEXT github.com/usrsvc/usrsvc/internal/launch/child.program(SB) /x/child.go
  child.go:1		0x1		e8		CALL syscall.RawSyscall(SB)
  child.go:2		0x2		e8		CALL runtime.panicIndex(SB)
  child.go:3		0x3		e8		CALL runtime.morestack_noctxt.abi0(SB)
  child.go:4		0x4		e8		CALL sync/atomic.AddUint32(SB)
  child.go:5		0x5		e8		CALL AX
  child.go:6		0x6		e8		JMP fmt.Sprint(SB)
  child.go:7		0x7		e8		CMPL runtime.writeBarrier(SB), $0x0
  child.go:8		0x8		e8		JMP 0x1
  child.go:9		0x9		e8		CALL github.com/usrsvc/usrsvc/internal/launch/child.rawExit(SB)
TEXT syscall.RawSyscall6(SB) /go/src/syscall/syscall_linux.go
  syscall_linux.go:1	0xa		e8		CALL internal/runtime/syscall/linux.Syscall6(SB)
  syscall_linux.go:2	0xb		e8		CALL runtime.racefuncenter(SB)
`
	bad := childCodeProblems(listing)
	require.Len(t, bad, 7, "%q", bad)
	for i, want := range []string{"panicIndex", "morestack", "AddUint32", "CALL AX", "fmt.Sprint", "writeBarrier", "racefuncenter"} {
		assert.Contains(t, bad[i], want)
	}
}

// rebuildTestBinary builds this package's test binary with the build
// settings of the running one (-race, -cover and its mode, -gcflags,
// -ldflags, -tags, CGO_ENABLED, GOAMD64...), symbols kept.
func rebuildTestBinary(t *testing.T, goTool string) string {
	info, ok := debug.ReadBuildInfo()
	require.True(t, ok, "no build information in the test binary")
	bin := filepath.Join(t.TempDir(), "launch.test")
	args := []string{"test", "-c", "-o", bin}
	env := os.Environ()
	for _, s := range info.Settings {
		switch {
		case s.Key == "-race" && s.Value == "true":
			args = append(args, "-race")
		case s.Key == "-cover" && s.Value == "true":
			args = append(args, "-cover", "-covermode="+testing.CoverMode())
		case s.Key == "-gcflags" || s.Key == "-ldflags" || s.Key == "-tags" || s.Key == "-asmflags":
			args = append(args, s.Key+"="+s.Value)
		case s.Key == "CGO_ENABLED" || strings.HasPrefix(s.Key, "GO"):
			env = append(env, s.Key+"="+s.Value)
		}
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%v: %s", cmd.Args, out)
	t.Logf("rebuilt: %v", cmd.Args)
	return bin
}
