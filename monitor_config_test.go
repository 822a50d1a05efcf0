package usrsvc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/proc"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// The monitor tests run helper processes (internal/testproc). They hook in
// with an init function rather than a TestMain, so that they coexist with the
// package's TestMain wherever it is defined: in a helper process, init runs
// the helper's behaviour and exits before any TestMain; otherwise it returns
// at once, and calling testproc.Main again from a TestMain is harmless.
func init() { testproc.Main() }

// liveProcess describes the running process pid as the Manager would.
func liveProcess(t testing.TB, pid int) Process {
	t.Helper()
	pp, err := proc.Default().Process(pid)
	require.NoError(t, err)
	return Process{PID: pid, StartTicks: pp.StartTicks, Started: pp.Started, Title: pp.Title, Args: pp.Args}
}

func TestMonitorConfig(t *testing.T) {
	t.Parallel()
	fs := proc.FS{Root: "/fixture"}
	assert.Empty(t, configMonitors(nil, fs))
	assert.Empty(t, configMonitors(&ProgramConfig{Name: "x"}, fs))

	pc := &ProgramConfig{Name: "web", Monitor: MonitorConfig{
		ActivityFile: "/home/u/alive", ActivityFileLimit: time.Minute, RSSLimitKB: 30000,
	}}
	mons := configMonitors(pc, fs)
	require.Len(t, mons, 2)
	assert.Equal(t, ActivityFile{Path: "/home/u/alive", Limit: time.Minute}, mons[0])
	assert.Equal(t, &RSSLimit{LimitKB: 30000, fs: fs}, mons[1])

	pc.Monitor.ActivityFile = ""
	mons = configMonitors(pc, fs)
	require.Len(t, mons, 1)
	assert.Equal(t, "rss_limit", mons[0].Name())

	pc.Monitor = MonitorConfig{ActivityFile: "/d", ActivityFileLimit: time.Second}
	mons = configMonitors(pc, fs)
	require.Len(t, mons, 1)
	assert.Equal(t, "activityfile", mons[0].Name())
}
