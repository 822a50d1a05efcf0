package usrsvc

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

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

// usrsvcd's autostart follows depends_on: the dependent is launched only
// once its dependency runs and is ready (the database listens after 2 s).
func TestDaemonStartsDependenciesFirst(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	port := freePort(t)
	db := testproc.New(t, "http-server", "--listen=127.0.0.1:"+port, "--after=2s")
	e.addProgram("db", db.CommandLine(), "ready = tcp:127.0.0.1:"+port)
	web := testproc.New(t, "sleep")
	e.addProgram("web", web.CommandLine(), "depends_on = db")
	var evs events
	m := e.manager(recorder(&evs))
	runLoop(t, m)
	webUp := evs.wait(t, EventStarted, "web", 1)[0]
	dbUp := evs.wait(t, EventStarted, "db", 1)[0]
	assert.False(t, webUp.Time.Before(dbUp.Time), "web started after db was ready")
	p, err := m.fs.Stat(webUp.PID)
	require.NoError(t, err)
	q, err := m.fs.Stat(dbUp.PID)
	require.NoError(t, err)
	assert.Greater(t, p.StartTicks, q.StartTicks+100, "web launched at least 1 s after db (db is ready 2 s after its launch)")
}

// A dependency that will not come by itself (autostart = false) holds its
// dependent, logged at once with the fix; starting the dependency by hand
// releases it.
func TestDaemonDependentWaits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db := testproc.New(t, "sleep")
	e.addProgram("db", db.CommandLine(), "autostart = false")
	web := testproc.New(t, "sleep")
	e.addProgram("web", web.CommandLine(), "depends_on = db")
	var evs events
	var logs testproc.Buffer
	m := e.manager(recorder(&evs), func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	runLoop(t, m)
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "web: not started: its dependency db is stopped; it starts once db runs (usrsvc start db)")
	}, "the wait is logged")
	st, err := m.Do(ctxT(t), ActionStatus, "web")
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.Equal(t, StateStarting, st.State)
	assert.Equal(t, "waiting for dependency db (stopped)", st.Reason)
	assert.Empty(t, web.PIDs())

	_, err = e.manager().Do(ctxT(t), ActionStart, "db")
	require.NoError(t, err)
	evs.wait(t, EventStarted, "web", 1)
	assert.Len(t, web.PIDs(), 1)
	assert.Contains(t, logs.String(), "web: its dependencies run after")
}

// numprocs instances running the very same command line are told apart by
// their pidfiles: a scan for one (its pidfile lost) never takes a
// sibling's process.
func TestInstancesWithOneCommand(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	h := testproc.New(t, "sleep")
	e.programs = append(e.programs, "[Program:w]\nnumprocs = 3\ncommand = "+h.CommandLine()+
		"\npidfile = "+e.path("w-%(process_num)d.pid")+"\nstdout = "+e.path("w.log")+"\nsuccess_seconds = 0.3\n")
	m := e.manager()
	res := m.DoAll(ctxT(t), ActionStart, []string{"w"}, true)
	pids := map[string]int{}
	for _, r := range res {
		require.NoError(t, r.Err, r.Program)
		pids[r.Program] = r.Status.Process.PID
	}
	require.Len(t, h.PIDs(), 3, "three processes of one command")
	for i, name := range []string{"w_00", "w_01", "w_02"} {
		require.NoError(t, os.Remove(e.path(fmt.Sprintf("w-%d.pid", i))))
		st, err := e.manager().Do(ctxT(t), ActionStatus, name)
		require.NoError(t, err)
		require.True(t, st.Running, name)
		assert.Equal(t, pids[name], st.Process.PID, "%s found its own process, not a sibling's", name)
	}
}
