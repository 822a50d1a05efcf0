package usrsvc

import (
	"path/filepath"

	"github.com/usrsvc/usrsvc/internal/pathsafe"
)

// checkPathSafety refuses the files usrsvc and usrsvcd write — program
// logs and pidfiles, usrsvcd's pidfile and logs, the state directory — in
// a directory another account can write (sticky /tmp included): there,
// that account could create the file first, or a symbolic link to a file
// of yours in its place (a log linked to ~/.bashrc gets the program's
// output appended to it). A program's problem is reported at its key, or
// its section's header for a default path, so only that program is
// broken; [Main]'s at the [Main] header. Directories that do not exist
// yet are judged by where they will be created (package pathsafe).
func (l *configLoader) checkPathSafety(cfg *Config) {
	if cfg == nil || len(cfg.Files) == 0 {
		return
	}
	checked := map[string]error{}
	check := func(dir string) error {
		if err, ok := checked[dir]; ok {
			return err
		}
		err := pathsafe.Dir(dir)
		checked[dir] = err
		return err
	}
	for _, f := range []struct{ what, path string }{
		{"[Main] pidfile", cfg.DaemonPidfile},
		{"usrsvcd_stdout", cfg.DaemonStdout},
		{"usrsvcd_stderr", cfg.DaemonStderr},
		{"state_dir", cfg.StateDir},
	} {
		if f.path == "" || f.path == "stdout" || !filepath.IsAbs(f.path) {
			continue
		}
		dir := filepath.Dir(f.path)
		if f.what == "state_dir" {
			dir = f.path
		}
		if err := check(dir); err != nil {
			l.add(cfg.Path, cfg.MainLine, "%s %s: %v", f.what, f.path, err)
		}
	}
	for _, lp := range l.programs {
		pc := lp.cfg
		for _, f := range []struct{ key, path string }{{"stdout", pc.Stdout}, {"stderr", pc.Stderr}, {"pidfile", pc.Pidfile}} {
			if f.path == "" || !filepath.IsAbs(f.path) || (f.key == "stderr" && f.path == pc.Stdout) {
				continue
			}
			if err := check(filepath.Dir(f.path)); err != nil {
				file, line := lp.sec.file, lp.sec.line
				if r, ok := lp.sec.keys[f.key]; ok {
					file, line = r.file, r.line
				} else if lp.defaults != nil {
					if r, ok := lp.defaults.keys[f.key]; ok {
						file, line = r.file, r.line
					}
				}
				l.add(file, line, "[Program:%s] %s %s: %v", pc.Name, f.key, f.path, err)
			}
		}
	}
}
