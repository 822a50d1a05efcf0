package web

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc"
)

// groupsConfig writes a config with instances (numprocs), [Group:NAME]
// sections and a program of no group; nothing is started.
func groupsConfig(t *testing.T, extra string) *usrsvc.Config {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`[Main]
pidfile = %[1]s/usrsvcd.pid
state_dir = %[1]s/state
[Program:worker]
command = /bin/sleep 10%%(process_num)02d
numprocs = 3
[Program:web]
command = /bin/sleep 2001
[Program:api]
command = /bin/sleep 2002
[Program:solo]
command = /bin/sleep 2003
[Group:site]
programs = web, api
[Group:zz]
programs = api
%[2]s`, dir, extra)
	p := filepath.Join(dir, "usrsvc.cfg")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	cfg, err := usrsvc.LoadConfig(p)
	require.NoError(t, err)
	return cfg
}

func TestGroupNames(t *testing.T) {
	t.Parallel()
	cfg := groupsConfig(t, "")
	gi := newGroupIndex(cfg)
	assert.Equal(t, "worker", gi.groupOf("worker_00"))
	assert.Equal(t, "site", gi.groupOf("web"))
	assert.Equal(t, "site", gi.groupOf("api"), "in two groups: the first by name")
	assert.Equal(t, "solo", gi.groupOf("solo"))
	assert.Equal(t, "worker:worker_01", gi.namespec("worker_01"))
	assert.Equal(t, "solo", gi.namespec("solo"))
	assert.Equal(t, []string{"site", "solo", "worker"}, gi.names())

	for spec, want := range map[string]target{
		"worker:worker_01": {names: []string{"worker_01"}},
		"worker_01":        {names: []string{"worker_01"}},
		"worker:*":         {names: []string{"worker_00", "worker_01", "worker_02"}, whole: true},
		"worker:":          {names: []string{"worker_00", "worker_01", "worker_02"}, whole: true},
		"worker":           {names: []string{"worker_00", "worker_01", "worker_02"}, whole: true},
		"site:web":         {names: []string{"web"}},
		"zz:api":           {names: []string{"api"}},
		"zz:*":             {names: []string{"api"}, whole: true},
		"solo":             {names: []string{"solo"}},
		"solo:solo":        {names: []string{"solo"}},
		"solo:*":           {names: []string{"solo"}, whole: true},
	} {
		got, err := gi.resolve(spec)
		require.NoError(t, err, spec)
		assert.Equal(t, want, got, spec)
	}
	for _, spec := range []string{"nope", "worker:web", "site:worker_00", "nope:*", "worker:nope", "solo:web", ":*", ""} {
		_, err := gi.resolve(spec)
		assert.Equal(t, faultBadName, faultCode(t, err), spec)
	}

	h, _ := newTestHandler(t, Options{Config: cfg})
	v, err := rpc(t, h, "supervisor.getAllProcessInfo")
	require.NoError(t, err)
	var got []string
	for _, i := range v.([]any) {
		info := i.(map[string]any)
		got = append(got, info["group"].(string)+":"+info["name"].(string))
	}
	assert.Equal(t, []string{"site:api", "site:web", "solo:solo", "worker:worker_00", "worker:worker_01", "worker:worker_02"}, got,
		"by group, then name, as supervisord lists them")
	v, err = rpc(t, h, "supervisor.getProcessInfo", "worker:worker_02")
	require.NoError(t, err)
	assert.Equal(t, "worker", v.(map[string]any)["group"])
	assert.Equal(t, "worker_02", v.(map[string]any)["name"])
	_, err = rpc(t, h, "supervisor.getProcessInfo", "worker:*")
	assert.Equal(t, faultBadName, faultCode(t, err), "a group is not one process")
	v, err = rpc(t, h, "supervisor.getAllConfigInfo")
	require.NoError(t, err)
	assert.Equal(t, "site", v.([]any)[0].(map[string]any)["group"])
	assert.Equal(t, "api", v.([]any)[0].(map[string]any)["name"])
	// Group methods on nothing running: empty answers; unknown groups
	// BAD_NAME.
	v, err = rpc(t, h, "supervisor.stopProcessGroup", "worker")
	require.NoError(t, err)
	assert.Empty(t, v)
	_, err = rpc(t, h, "supervisor.stopProcessGroup", "nope")
	assert.Equal(t, faultBadName, faultCode(t, err))
	_, err = rpc(t, h, "supervisor.signalProcessGroup", "nope", "HUP")
	assert.Equal(t, faultBadName, faultCode(t, err))
}

// reread lists groups, as supervisord does: added until added, changed
// until removed and added again, removed until removed.
func TestRereadGroups(t *testing.T) {
	t.Parallel()
	cfg := groupsConfig(t, "")
	h, _ := newTestHandler(t, Options{Config: cfg})
	reread := func() []any {
		t.Helper()
		v, err := rpc(t, h, "supervisor.reloadConfig")
		require.NoError(t, err)
		return v.([]any)[0].([]any)
	}
	assert.Equal(t, []any{[]any{}, []any{}, []any{}}, reread())

	data, err := os.ReadFile(cfg.Path)
	require.NoError(t, err)
	text := strings.Replace(string(data), "numprocs = 3", "numprocs = 2", 1)
	text = strings.Replace(text, "[Program:solo]\ncommand = /bin/sleep 2003\n", "[Program:extra]\ncommand = /bin/sleep 2004\n", 1)
	require.NoError(t, os.WriteFile(cfg.Path, []byte(text), 0o600))
	want := []any{[]any{"extra"}, []any{"worker"}, []any{"solo"}}
	assert.Equal(t, want, reread())
	assert.Equal(t, want, reread(), "until update")

	// What supervisorctl update does, nothing running.
	for _, g := range []string{"solo", "worker"} {
		_, err = rpc(t, h, "supervisor.stopProcessGroup", g)
		require.NoError(t, err, g)
		v, err := rpc(t, h, "supervisor.removeProcessGroup", g)
		require.NoError(t, err, g)
		assert.Equal(t, true, v)
	}
	_, err = rpc(t, h, "supervisor.removeProcessGroup", "solo")
	assert.Equal(t, faultBadName, faultCode(t, err), "removed already")
	for _, g := range []string{"worker", "extra"} {
		v, err := rpc(t, h, "supervisor.addProcessGroup", g)
		require.NoError(t, err, g)
		assert.Equal(t, true, v)
	}
	_, err = rpc(t, h, "supervisor.addProcessGroup", "extra")
	assert.Equal(t, faultAlreadyAdded, faultCode(t, err))
	_, err = rpc(t, h, "supervisor.addProcessGroup", "solo")
	assert.Equal(t, faultBadName, faultCode(t, err), "no longer configured")
	assert.Equal(t, []any{[]any{}, []any{}, []any{}}, reread())
}
