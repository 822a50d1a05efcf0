package usrsvc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/testproc"
)

// depends_on: starting a program starts its dependencies first, each ready
// before its dependents start (the database listens only after 2 s here);
// a stop stops dependents before their dependencies.
func TestDependsOnOrder(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	db := testproc.New(t, "http-server", "--listen=127.0.0.1:"+port, "--after=2s")
	e.addProgram("db", db.CommandLine(), "ready = tcp:127.0.0.1:"+port)
	web := testproc.New(t, "sleep")
	e.addProgram("web", web.CommandLine(), "depends_on = db")
	worker := testproc.New(t, "sleep")
	e.addProgram("worker", worker.CommandLine(), "depends_on = db, web")
	var evs events
	m := e.manager(recorder(&evs))

	res := m.DoAll(ctxT(t), ActionStart, []string{"worker"}, true)
	require.Len(t, res, 3, "worker and its dependencies")
	for _, r := range res {
		require.NoError(t, r.Err, r.Program)
	}
	started := evs.list(EventStarted, "")
	var order []string
	for _, ev := range started {
		order = append(order, ev.Program)
	}
	assert.Equal(t, []string{"db", "web", "worker"}, order, "dependencies first")
	dbStarted := evs.list(EventStarted, "db")[0].Time
	assert.False(t, evs.list(EventStarted, "web")[0].Time.Before(dbStarted), "web after db is ready")

	res = m.DoAll(ctxT(t), ActionStop, nil, true)
	var stopped []string
	for _, ev := range evs.list(EventStopped, "") {
		stopped = append(stopped, ev.Program)
	}
	assert.Equal(t, []string{"worker", "web", "db"}, stopped, "dependents first")
	for _, r := range res {
		require.NoError(t, r.Err, r.Program)
	}
}

// A program whose dependency is not ready in time is not launched, and
// says so.
func TestDependencyNotReady(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	e.addProgram("db", testproc.New(t, "sleep").CommandLine(), "ready = tcp:127.0.0.1:"+port, "ready_timeout = 0.5")
	web := testproc.New(t, "sleep")
	e.addProgram("web", web.CommandLine(), "depends_on = db")
	m := e.manager()
	res := m.DoAll(ctxT(t), ActionStart, []string{"web"}, false)
	require.Len(t, res, 2)
	assert.ErrorIs(t, res[0].Err, ErrNotReady)
	require.Error(t, res[1].Err)
	assert.ErrorIs(t, res[1].Err, ErrNotReady)
	assert.True(t, strings.Contains(res[1].Err.Error(), "dependency db not ready: not ready after 500ms"), res[1].Err.Error())
	assert.Empty(t, web.PIDs(), "not launched")
}
