package web

import (
	"os"
	"testing"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// TestMain lets the test binary run as a testproc helper and as the
// library's launcher (tests start real programs through the library).
func TestMain(m *testing.M) {
	testproc.Main()
	os.Exit(m.Run())
}
