package usrsvc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

func TestStateRecordVersions(t *testing.T) {
	t.Parallel()
	sd := statedir.Dir(t.TempDir())
	now := time.Now().Truncate(time.Second)
	require.NoError(t, sd.WriteRecord(&statedir.Record{Program: "web", State: string(StateRunning), Restarts: 2, Updated: now}))
	rec, err := sd.Record("web")
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, StateRunning, State(rec.State))
	assert.Equal(t, 2, rec.Restarts)
	assert.Equal(t, statedir.Version, rec.Version)

	for name, tc := range map[string]struct{ data, want string }{
		// A newer format, even one whose fields this version cannot
		// decode, is reported as another version, not misread.
		"newer":           {`{"version":2,"program":"web","state":"running"}`, "has format version 2, this usrsvc understands 1"},
		"newer, new type": {`{"version":2,"program":"web","restarts":"many"}`, "has format version 2, this usrsvc understands 1"},
		"no version":      {`{"program":"web","state":"running"}`, "has format version 0"},
		"corrupt":         {`{"version":1,"state":`, "is corrupt"},
		"bad field":       {`{"version":1,"restarts":"many"}`, "is corrupt"},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(sd.RecordPath("web"), []byte(tc.data), 0o600))
			_, err := sd.Record("web")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), filepath.Join("programs", "web.daemon.json"))
		})
	}

	r, err := sd.Record("absent")
	assert.NoError(t, err)
	assert.Nil(t, r)
}

// A manual stop holds only while the program does not run: a running
// program was started again since, whatever the record says (and status
// all does not read the record of a running program).
func TestStatusStoppedByHandOnlyWhenNotRunning(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cmd, _ := uniqueSleep(t)
	e.addProgram("app", cmd)
	m := e.manager()
	ctx := ctxT(t)
	_, err := m.Do(ctx, ActionStop, "app")
	require.NoError(t, err)
	for _, st := range []*Status{status1(t, m, "app"), statusAll(t, m, "app")} {
		assert.False(t, st.Running)
		assert.True(t, (st.State == StateStoppedByHand))
		assert.Equal(t, StateStoppedByHand, st.State)
	}

	_, err = m.Do(ctx, ActionStart, "app")
	require.NoError(t, err)
	// A stop record written behind usrsvc's back (another tool's) does not
	// make a running program "stopped by hand".
	require.NoError(t, m.state().SetManual("app", string(ActionStop), time.Now()))
	for _, st := range []*Status{status1(t, m, "app"), statusAll(t, m, "app")} {
		assert.True(t, st.Running)
		assert.False(t, (st.State == StateStoppedByHand))
		assert.NotEqual(t, StateStoppedByHand, st.State)
	}
}

func status1(t *testing.T, m *Manager, name string) *Status {
	st, err := m.Do(ctxT(t), ActionStatus, name)
	require.NoError(t, err)
	return st
}

func statusAll(t *testing.T, m *Manager, name string) *Status {
	for _, r := range m.DoAll(ctxT(t), ActionStatus, nil, false) {
		if r.Program == name {
			require.NoError(t, r.Err)
			return r.Status
		}
	}
	t.Fatalf("status all: no %s", name)
	return nil
}
