package web

import (
	"context"
	"os"

	"github.com/usrsvc/usrsvc"
	"github.com/usrsvc/usrsvc/internal/statedir"
)

// usrsvcweb is often one of the programs it serves (run by usrsvcd, as in
// examples/cfg/50-usrsvcweb.cfg). Stopping that program would stop the
// server in the middle of its answer and leave it stopped by hand: the
// remote face gone until someone logs in on the host. So:
//
//   - the program whose process is this one, or one of its ancestors (a
//     shell that runs it), is "self";
//   - stop all (and stopAllProcesses, stopProcessGroup, signal all) skips
//     self, and says so in its result;
//   - a stop of self's name is refused with the reason: stop it from a
//     shell (usrsvc stop NAME), or with the API's ?force=true;
//   - a restart of self (the page's and the API's restart) answers first,
//     then asks Options.RestartSelf to end this process; usrsvcd, which
//     supervises it, starts it again (it is not a manual stop, so nothing
//     keeps it stopped). Without usrsvcd running, or with autorestart =
//     false, it is refused with the reason;
//   - the page offers no Stop on self's row.

// maxAncestors bounds the walk up the parent chain.
const maxAncestors = 32

// ancestors returns this process and its ancestors' pids, with their
// distance (0: this process).
func (h *Handler) ancestors() map[int]int {
	out := map[int]int{}
	pid := os.Getpid()
	for depth := 0; depth < maxAncestors && pid > 1; depth++ {
		if _, seen := out[pid]; seen {
			break
		}
		out[pid] = depth
		p, err := h.reader.fs.Stat(pid)
		if err != nil {
			break
		}
		pid = p.PPID
	}
	return out
}

// selfIn returns the program of results whose running process is this
// one or its nearest ancestor; "" when none.
func (h *Handler) selfIn(results []usrsvc.Result) string {
	anc := h.ancestors()
	best, bestDepth := "", maxAncestors+1
	for _, r := range results {
		if st := r.Status; st != nil && st.Running && st.Process != nil {
			if d, ok := anc[st.Process.PID]; ok && d < bestDepth {
				best, bestDepth = r.Program, d
			}
		}
	}
	return best
}

// isSelf reports whether st is the status of self.
func (h *Handler) isSelf(st *usrsvc.Status) bool {
	if st == nil || !st.Running || st.Process == nil {
		return false
	}
	_, ok := h.ancestors()[st.Process.PID]
	return ok
}

// selfStopRefusal is why a stop of self is refused.
func selfStopRefusal(name string) string {
	return name + " is this usrsvcweb, which serves this request: stopping it would cut this connection and leave " +
		"the web interface stopped until someone starts it on the host. Stop it from a shell there (usrsvc stop " + name +
		"), or with POST /api/v1/programs/" + name + "/stop?force=true"
}

// selfSkipped is the result of an all-style stop for self.
func selfSkipped(name string) string {
	return name + ": skipped: it is this usrsvcweb, which serves this request (stop it from a shell: usrsvc stop " + name + ")"
}

// canRestartSelf says why self cannot be restarted through itself, or "".
func (h *Handler) canRestartSelf(ctx context.Context, name string) string {
	if h.opts.RestartSelf == nil {
		return name + " is this server, which cannot restart itself here (no Options.RestartSelf); restart it from a shell: usrsvc restart " + name
	}
	pc := h.config().Program(name)
	if pc == nil || !pc.Autorestart {
		return name + " is this usrsvcweb and has autorestart = false: nothing would start it again. Restart it from a shell: usrsvc restart " + name
	}
	cfg := h.config()
	if _, running, _ := statedir.Dir(cfg.StateDir).DaemonStatus(ctx, cfg.DaemonPidfile); !running {
		return name + " is this usrsvcweb, and usrsvcd is not running to start it again. Restart it from a shell: usrsvc restart " + name
	}
	return ""
}
