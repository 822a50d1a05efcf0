package proc

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Tree returns the live descendants of pid (not pid itself), found by
// following /proc/PID/task/TID/children from pid down: it reads only the
// tree, not every process of the machine, so its cost does not grow with
// the number of other processes. The result is a [Snapshot] holding pid
// (when readable) and its descendants, so [Snapshot.Children] and parent
// links work on it. Processes vanishing during the walk are left out.
//
// The children files need CONFIG_PROC_CHILDREN; without them Tree falls
// back to a full [FS.Snapshot] of uid filtered to pid's descendants.
// Running out of open files or memory while walking is an error (wrapping
// the errno): a partial tree would pass live processes for gone.
func (fs FS) Tree(pid, uid int) (*Snapshot, error) {
	s := &Snapshot{Taken: time.Now(), Procs: make(map[int]*Process)}
	if p, err := fs.Process(pid); err == nil {
		s.Procs[pid] = p
	}
	queue := []int{pid}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		kids, err := fs.children(cur)
		if err != nil {
			if exhausted(err) {
				return nil, err
			}
			if cur == pid && !os.IsNotExist(err) {
				return fs.treeBySnapshot(pid, uid)
			}
			continue
		}
		for _, k := range kids {
			if _, seen := s.Procs[k]; seen {
				continue
			}
			p, err := fs.Process(k)
			if exhausted(err) {
				return nil, err
			}
			if err != nil {
				continue
			}
			s.Procs[k] = p
			queue = append(queue, k)
		}
	}
	return s, nil
}

// children lists the children of every thread of pid.
func (fs FS) children(pid int) ([]int, error) {
	tasks, err := os.ReadDir(fs.path(pid, "task"))
	if err != nil {
		return nil, err
	}
	var kids []int
	var data []byte
	for _, t := range tasks {
		data, err = readFile(fs.path(pid, "task/"+t.Name()+"/children"), data)
		if exhausted(err) {
			return nil, err
		}
		if err != nil {
			if os.IsNotExist(err) && len(kids) == 0 {
				// Either the thread is gone, or there are no children files.
				if _, serr := os.Stat(fs.path(pid, "task/"+t.Name())); serr == nil {
					return nil, err
				}
			}
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, nil
}

func (fs FS) treeBySnapshot(pid, uid int) (*Snapshot, error) {
	all, err := fs.Snapshot(uid)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Taken: all.Taken, Procs: map[int]*Process{}}
	for _, p := range all.Descendants(pid) {
		s.Procs[p.PID] = p
	}
	if p := all.Procs[pid]; p != nil {
		s.Procs[pid] = p
	}
	return s, nil
}
