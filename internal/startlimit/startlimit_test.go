package startlimit_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/startlimit"
)

// The package imports nothing, and its test is an external package, so
// its init runs before syscall's in this test binary too.
//
// Started with a soft limit below the hard one, the process records that
// soft limit, though Go's runtime has raised it by the time tests run.
func TestRecordsTheLimitBeforeGoRaisesIt(t *testing.T) {
	if os.Getenv("STARTLIMIT_CHILD") == "1" {
		var now syscall.Rlimit
		require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now))
		os.Stdout.WriteString(strconv.FormatUint(startlimit.Cur, 10) + " " + strconv.FormatUint(startlimit.Max, 10) + " " +
			strconv.FormatUint(now.Cur, 10) + " " + strconv.FormatBool(startlimit.Known) + "\n")
		return
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Max < 200 {
		t.Skip("hard limit too low to test")
	}
	// A shell lowers the soft limit and runs this test binary again.
	cmd := exec.Command("/bin/sh", "-c", "ulimit -S -n 100 && exec \"$0\" -test.run=TestRecordsTheLimitBeforeGoRaisesIt", os.Args[0])
	cmd.Env = append(os.Environ(), "STARTLIMIT_CHILD=1")
	out, err := cmd.Output()
	require.NoError(t, err, string(out))
	f := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(f), 4, string(out))
	assert.Equal(t, "100", f[0], "the soft limit at the start")
	assert.Equal(t, strconv.FormatUint(lim.Max, 10), f[1], "the hard limit")
	assert.NotEqual(t, "100", f[2], "Go raised it since")
	assert.Equal(t, "true", f[3])
}
