package web

import (
	"context"
	"maps"
	"slices"
	"sort"

	"github.com/usrsvc/usrsvc"
)

// supervisorctl reread and update, over supervisorctl's groups (groups.go).
//
// As supervisord does, usrsvcweb remembers the groups "added": those of
// the configuration at its start, and those addProcessGroup added since,
// each with the settings it was added with. reloadConfig (reread) loads
// the configuration, puts it in force (and makes a running usrsvcd reread
// it, which never stops or restarts anything), and lists the groups:
//
//   - added: configured, not added yet ("worker: available");
//   - changed: added with other settings ("worker: changed");
//   - removed: added, no longer configured ("worker: disappeared").
//
// supervisorctl update then stops each changed and removed group
// (stopProcessGroup), removes it (removeProcessGroup), and adds each
// changed and added one (addProcessGroup). So update applies a change as
// supervisord does, by a restart: the stop of a changed or removed group
// finds its processes with the settings the group was added with (a
// changed command or proctitle_re would not match what the old one
// started), then with the settings in force; addProcessGroup starts again,
// with the new settings, the programs that stop stopped (a program moved
// to another group comes back with that group). An added group is started
// by nobody here: usrsvcd autostarts it on its reread, as it does for any
// reread. reread alone changes nothing that runs.

// addedGroup is a supervisorctl group as it was added.
type addedGroup struct {
	// cfg is the configuration in force when it was added.
	cfg *usrsvc.Config
	// programs are its programs then, by name.
	programs []*usrsvc.Program
}

// names returns the names of the group's programs.
func (a addedGroup) names() []string {
	out := make([]string, len(a.programs))
	for i, pc := range a.programs {
		out[i] = pc.Name
	}
	return out
}

// updateState is what usrsvcweb remembers between supervisorctl's calls.
type updateState struct {
	// known are the groups added.
	known map[string]addedGroup
	// pending are the groups the last reloadConfig listed as changed or
	// removed: their stop is update's.
	pending map[string]bool
	// restart are the programs update's stops stopped: addProcessGroup
	// starts them again.
	restart map[string]bool
}

// snapshotGroup is group g of cfg as added now.
func snapshotGroup(cfg *usrsvc.Config, gi *groupIndex, g string) addedGroup {
	a := addedGroup{cfg: cfg}
	for _, name := range gi.members[g] {
		a.programs = append(a.programs, cfg.Program(name))
	}
	return a
}

// initGroups adds every group of cfg (usrsvcweb's start).
func (u *updateState) initGroups(cfg *usrsvc.Config) {
	gi := newGroupIndex(cfg)
	u.known = map[string]addedGroup{}
	for _, g := range gi.names() {
		u.known[g] = snapshotGroup(cfg, gi, g)
	}
	u.pending, u.restart = map[string]bool{}, map[string]bool{}
}

// sameGroup reports whether the group a was added with the settings its
// programs have in cfg.
func sameGroup(a addedGroup, cfg *usrsvc.Config, members []string) bool {
	if !slices.Equal(a.names(), members) {
		return false
	}
	for _, pc := range a.programs {
		if !pc.SameSettings(cfg.Program(pc.Name)) {
			return false
		}
	}
	return true
}

// changes lists the groups added, changed and removed in cfg, each
// sorted.
func (u *updateState) changes(cfg *usrsvc.Config) (added, changed, removed []string) {
	gi := newGroupIndex(cfg)
	added, changed, removed = []string{}, []string{}, []string{}
	for _, g := range gi.names() {
		switch a, ok := u.known[g]; {
		case !ok:
			added = append(added, g)
		case !sameGroup(a, cfg, gi.members[g]):
			changed = append(changed, g)
		}
	}
	for g := range u.known {
		if _, ok := gi.members[g]; !ok {
			removed = append(removed, g)
		}
	}
	sort.Strings(removed)
	return added, changed, removed
}

// rpcReloadConfig rereads the configuration and lists the groups added,
// changed and removed since they were added.
func (h *Handler) rpcReloadConfig(ctx context.Context, _ []any) (any, error) {
	out, err := h.reread(ctx)
	if err != nil {
		return nil, fault(faultCantReread, err.Error())
	}
	h.reader.changed()
	h.hub.trigger()
	h.updMu.Lock()
	added, changed, removed := h.upd.changes(h.config())
	h.upd.pending = map[string]bool{}
	for _, g := range append(slices.Clone(changed), removed...) {
		h.upd.pending[g] = true
	}
	h.upd.restart = map[string]bool{}
	h.updMu.Unlock()
	h.audit(ctx, "reread", "", "message", out.Message, "added", added, "changed", changed, "removed", removed)
	return []any{[]any{added, changed, removed}}, nil
}

// rpcStopGroup is stopProcessGroup: the programs of the group that run are
// stopped by hand. For a group the last reloadConfig listed as changed or
// removed (supervisorctl update), they are found first with the settings
// the group was added with, and those stopped are remembered for
// addProcessGroup.
func (h *Handler) rpcStopGroup(ctx context.Context, a []any) (any, error) {
	g := str(a, 0)
	h.updMu.Lock()
	old, known := h.upd.known[g]
	pending := h.upd.pending[g]
	h.updMu.Unlock()
	t, err := h.groups().resolve(g + ":*")
	if err != nil && !(known && pending) {
		return nil, fault(faultBadName, g)
	}
	var remember func(string)
	if pending {
		remember = func(name string) {
			h.updMu.Lock()
			h.upd.restart[name] = true
			h.updMu.Unlock()
		}
	}
	byName := map[string]any{}
	var order []string
	if known && pending {
		if m, err := usrsvc.NewManager(old.cfg, usrsvc.Options{Logger: h.log}); err == nil {
			for _, r := range h.stopResultsWith(ctx, m, old.names(), remember) {
				name := r.(map[string]any)["name"].(string)
				byName[name], order = r, append(order, name)
			}
		} else {
			h.log.Warn("web: the configuration "+g+" was added with cannot be used to stop it; stopping it as configured now",
				"group", g, "error", err)
		}
	}
	if err == nil { // still configured
		for _, r := range h.stopResultsWith(ctx, h.manager(), t.names, remember) {
			name := r.(map[string]any)["name"].(string)
			if _, seen := byName[name]; !seen {
				order = append(order, name)
			}
			byName[name] = r
		}
	}
	h.reader.changed()
	h.hub.trigger()
	out := make([]any, len(order))
	for i, name := range order {
		out[i] = byName[name]
	}
	return out, nil
}

// rpcRemoveGroup is removeProcessGroup: the group is no longer added. It
// is refused while one of its programs runs, but for the program that is
// this server (never stopped through it: its new settings apply at its
// next start); nothing is stopped.
func (h *Handler) rpcRemoveGroup(ctx context.Context, a []any) (any, error) {
	g := str(a, 0)
	h.updMu.Lock()
	old, known := h.upd.known[g]
	h.updMu.Unlock()
	if !known {
		return nil, fault(faultBadName, g)
	}
	running := func(m *usrsvc.Manager, names []string) string {
		if len(names) == 0 {
			return ""
		}
		cfg := m.Config()
		for _, r := range m.DoAll(ctx, usrsvc.ActionStatus, names, false) {
			if pc := cfg.Program(r.Program); pc != nil && r.Status != nil && inRunningState(pc, r.Status) && !h.isSelf(r.Status) {
				return r.Program
			}
		}
		return ""
	}
	var inForce []string
	if t, err := h.groups().resolve(g + ":*"); err == nil {
		inForce = t.names
	}
	busy := running(h.manager(), inForce)
	if m, err := usrsvc.NewManager(old.cfg, usrsvc.Options{Logger: h.log}); err == nil && busy == "" {
		busy = running(m, old.names())
	}
	if busy != "" {
		return nil, fault(faultStillRunning, g+": "+busy+" runs: stop it first")
	}
	h.updMu.Lock()
	delete(h.upd.known, g)
	h.updMu.Unlock()
	h.audit(ctx, "remove process group", "", "group", g)
	return true, nil
}

// rpcAddGroup is addProcessGroup: the configured group is added with its
// settings in force, and the programs of it that update's stops stopped
// are started again (with those settings).
func (h *Handler) rpcAddGroup(ctx context.Context, a []any) (any, error) {
	g := str(a, 0)
	cfg := h.config()
	gi := newGroupIndex(cfg)
	if _, ok := gi.members[g]; !ok {
		return nil, fault(faultBadName, g)
	}
	h.updMu.Lock()
	if _, ok := h.upd.known[g]; ok {
		h.updMu.Unlock()
		return nil, fault(faultAlreadyAdded, g)
	}
	h.upd.known[g] = snapshotGroup(cfg, gi, g)
	var again []string
	for _, name := range gi.members[g] {
		if h.upd.restart[name] {
			delete(h.upd.restart, name)
			if cfg.Program(name).Enabled {
				again = append(again, name)
			}
		}
	}
	h.updMu.Unlock()
	h.audit(ctx, "add process group", "", "group", g)
	if len(again) > 0 {
		faults := h.startWithDeps(ctx, again)
		for _, name := range slices.Sorted(maps.Keys(faults)) {
			// supervisorctl update does not expect a fault here: the
			// group is added; the log and the status say what failed.
			h.log.Warn("web: "+name+" not started again after update", "program", name, "group", g, "error", faults[name].String)
		}
		h.reader.changed()
		h.hub.trigger()
	}
	return true, nil
}
