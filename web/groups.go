package web

import (
	"slices"
	"sort"
	"strings"

	"github.com/usrsvc/usrsvc"
)

// supervisord names every process GROUP:NAME. usrsvc's programs get the
// group supervisorctl shows them in:
//
//   - a program of groups (Config.Groups: the [Group:NAME] sections, and
//     each section with numprocs, which holds its instances) is in the
//     first of them by name: worker_00 of [Program:worker] with numprocs =
//     2 is worker:worker_00, web of [Group:site] is site:web;
//   - a program of no group is its own group: web is web:web, which
//     supervisorctl shows as plain web.
//
// So every program is in exactly one supervisorctl group. Namespecs are
// read as supervisord reads them (GROUP:NAME, GROUP:* and GROUP: for the
// whole group, NAME for GROUP = NAME), and more leniently: a bare NAME may
// be any program (worker_00) or any group (worker), and GROUP:* may name
// any group of Config.Groups, even one whose programs supervisorctl shows
// in another group.

// groupIndex is the supervisorctl groups of one configuration.
type groupIndex struct {
	cfg *usrsvc.Config
	// of is each program's supervisorctl group.
	of map[string]string
	// members are each supervisorctl group's programs, sorted by name.
	members map[string][]string
}

// newGroupIndex computes the supervisorctl group of every program of cfg.
func newGroupIndex(cfg *usrsvc.Config) *groupIndex {
	gi := &groupIndex{cfg: cfg, of: make(map[string]string, len(cfg.Programs)), members: map[string][]string{}}
	groups := make([]string, 0, len(cfg.Groups))
	for g := range cfg.Groups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		for _, name := range cfg.Groups[g] {
			if _, ok := gi.of[name]; !ok {
				gi.of[name] = g
			}
		}
	}
	for _, pc := range cfg.Programs {
		g, ok := gi.of[pc.Name]
		if !ok {
			g = pc.Name
			gi.of[pc.Name] = g
		}
		gi.members[g] = append(gi.members[g], pc.Name)
	}
	for name := range gi.of {
		if cfg.Program(name) == nil {
			delete(gi.of, name) // a group member that is not a valid program
		}
	}
	for _, m := range gi.members {
		sort.Strings(m)
	}
	return gi
}

// groupOf is the program's supervisorctl group (its own name when it is
// not configured).
func (gi *groupIndex) groupOf(name string) string {
	if g, ok := gi.of[name]; ok {
		return g
	}
	return name
}

// names returns the supervisorctl groups, sorted.
func (gi *groupIndex) names() []string {
	out := make([]string, 0, len(gi.members))
	for g := range gi.members {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// sortedNames lists every configured program, by group then name.
func (gi *groupIndex) sortedNames() []string {
	names := make([]string, 0, len(gi.cfg.Programs))
	for _, pc := range gi.cfg.Programs {
		names = append(names, pc.Name)
	}
	gi.sortByGroup(names)
	return names
}

// sortByGroup orders program names as supervisord lists its processes:
// by group, then by name.
func (gi *groupIndex) sortByGroup(names []string) {
	slices.SortStableFunc(names, func(a, b string) int {
		if c := strings.Compare(gi.groupOf(a), gi.groupOf(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// groupMembers returns the programs of the group g: a group of
// Config.Groups (all its programs, even those supervisorctl shows in
// another group), or a program (its own group); nil when g is neither.
func (gi *groupIndex) groupMembers(g string) []string {
	if m, ok := gi.cfg.Groups[g]; ok {
		var out []string
		for _, n := range m {
			if gi.cfg.Program(n) != nil {
				out = append(out, n)
			}
		}
		return out
	}
	if gi.cfg.Program(g) != nil {
		return []string{g}
	}
	return nil
}

// target is what a namespec designates.
type target struct {
	// names are the programs, sorted by name.
	names []string
	// whole: the namespec names a group (GROUP:*, or a group's bare
	// name), not one process.
	whole bool
}

// resolve reads a supervisord namespec: GROUP:NAME, GROUP:* or GROUP: (the
// whole group), or NAME (a program, else a group). It returns BAD_NAME
// for anything else.
func (gi *groupIndex) resolve(spec string) (target, error) {
	group, name, hasName := strings.Cut(spec, ":")
	switch {
	case !hasName && gi.cfg.Program(spec) != nil:
		return target{names: []string{spec}}, nil
	case !hasName:
		if m := gi.groupMembers(spec); len(m) > 0 {
			return target{names: m, whole: true}, nil
		}
	case name == "" || name == "*":
		if m := gi.groupMembers(group); len(m) > 0 {
			return target{names: m, whole: true}, nil
		}
	case gi.cfg.Program(name) != nil && (group == name || gi.groupOf(name) == group || slices.Contains(gi.cfg.Groups[group], name)):
		return target{names: []string{name}}, nil
	}
	return target{}, fault(faultBadName, spec)
}

// namespec is how supervisorctl writes a program: GROUP:NAME, or NAME
// when it is its own group.
func (gi *groupIndex) namespec(name string) string {
	if g := gi.groupOf(name); g != name {
		return g + ":" + name
	}
	return name
}
