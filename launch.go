package usrsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/usrsvc/usrsvc/internal/errs"
	"github.com/usrsvc/usrsvc/internal/home"
	"github.com/usrsvc/usrsvc/internal/launch"
)

// checkLauncher runs path as usrsvc's launcher with a probe that starts
// nothing, and reports whether it answers as one: nil when path imports
// package usrsvc (so the launcher's init hook is in it); "" checks the
// running binary.
func checkLauncher(ctx context.Context, path string) error {
	if path == "" {
		path = "/proc/self/exe"
	}
	res, err := launch.Spawn(ctx, path, &launch.Job{Probe: true}, nil)
	if err != nil {
		return spawnError(err)
	}
	if res.Outcome != launch.Probed {
		return fmt.Errorf("%w: %s answered the probe with %q", ErrLaunch, path, res.Outcome)
	}
	return nil
}

// spawnError wraps an error of launch.Spawn in its sentinel: ErrResource
// when the caller ran out of open files or memory (for its pipes, or to
// start the launcher), ErrLaunch when the launcher cannot be executed.
func spawnError(err error) error {
	if _, ok := errs.ResourceErrno(err); ok {
		// The errno stays in the chain (usrsvcd warns of EAGAIN once).
		return errs.File("starting the launcher", err)
	}
	if errors.Is(err, launch.ErrStart) {
		return fmt.Errorf("%w: %w", ErrLaunch, err)
	}
	return fmt.Errorf("%w: launcher: %w", ErrFailed, err)
}

// launch starts pc detached through a launcher and waits for the result of
// its success window. lock is the program's lock file: the launcher inherits
// it and holds it until the program is recorded, even if the caller dies.
// The returned warnings are worth showing even when the start succeeded.
func (m *Manager) launch(ctx context.Context, pc *Program, lock *os.File) (*Process, []string, error) {
	job, err := m.buildJob(pc)
	if err != nil {
		return nil, nil, err
	}
	exe := m.opts.LauncherPath
	if exe == "" {
		exe = "/proc/self/exe"
	}
	res, err := launch.Spawn(ctx, exe, job, lock)
	if err != nil {
		return nil, nil, spawnError(err)
	}
	var warnings []string
	if len(res.OtherRoots) > 0 && res.Process != nil {
		warnings = append(warnings, fmt.Sprintf("several processes match; recorded the oldest [%d], also matching: %s",
			res.Process.PID, strings.Join(res.OtherRoots, ", ")))
	}
	if res.PidfileErr != "" {
		warnings = append(warnings, "cannot write pidfile: "+res.PidfileErr)
	}
	if res.SubreaperErr != "" {
		warnings = append(warnings, "the program's tree could not have a subreaper of its own ("+
			res.SubreaperErr+"): a program that forks and exits looks exited")
	}
	if res.Outcome == launch.Started && res.Process != nil {
		p := res.Process
		return &Process{PID: p.PID, StartTicks: p.StartTicks, Started: p.Started, Title: p.Title,
			Executable: p.Executable, Args: p.Args}, warnings, nil
	}
	return nil, warnings, launchFailure(res, job)
}

// launchFailure words a failed launch and wraps its sentinel.
func launchFailure(res *launch.Result, job *launch.Job) *launchError {
	e := &launchError{stderr: res.Stderr}
	if res.Wait != nil {
		e.exit = exitStatusOf(*res.Wait, res.ExitTime)
	}
	if errno, ok := errs.ResourceErrno(res.Errno); ok && res.Outcome != launch.Started {
		// Out of open files, processes or disk space: not a verdict on the program.
		e.err, e.message = fmt.Errorf("%w: %w", ErrResource, res.Errno), fmt.Sprintf("%s: %s", res.Err, errs.ResourceHelp(errno))
		return e
	}
	switch res.Outcome {
	case launch.ExecFailed:
		e.err, e.message = ErrLaunch, execErrorMessage(res.Errno, res.Err, job.Path)
	case launch.ShellFailed:
		status := e.exit.Status
		e.err = ErrLaunch
		e.message = fmt.Sprintf("the shell could not run the command (exit status %d: %s)", status,
			map[int]string{126: "permission denied or not executable", 127: "command not found"}[status])
	case launch.Exited:
		e.err = ErrExited
		e.message = fmt.Sprintf("%s after %v, before success_seconds (%v)", e.exit, res.Elapsed.Round(time.Millisecond), job.Window)
	case launch.NoMatch:
		e.err = ErrNoMatch
		e.message = fmt.Sprintf("running but nothing matches proctitle_re %q; processes seen (now stopped): %s",
			job.TitleRE, strings.Join(res.Seen, "; "))
	case launch.FilesFailed:
		e.err, e.message = ErrPermission, res.Err
	default:
		e.err, e.message = ErrFailed, fmt.Sprintf("the launcher failed (%s): %s", res.Outcome, res.Err)
	}
	return e
}

func execErrorMessage(errno syscall.Errno, text, path string) string {
	switch errno {
	case syscall.ENOENT:
		return "no such file or directory: " + path
	case syscall.EACCES:
		return "permission denied: " + path
	case syscall.ENOEXEC:
		return "exec format error (not a binary, or a script without #!): " + path
	}
	return fmt.Sprintf("exec %s: %s", path, text)
}

// programEnv computes a program's environment: the caller's (inherit_env)
// without usrsvc's and systemd's own variables, then [[Env]] over it. A new
// slice each call: nothing leaks between programs.
func programEnv(pc *Program, base []string) []string {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	if pc.InheritEnv {
		for _, kv := range base {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			set(k, v)
		}
	}
	for _, e := range pc.Env {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		if launch.IsStripped(k) {
			continue
		}
		env = append(env, k+"="+vals[k])
	}
	return env
}

func envLookup(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// shellPath is the shell of useshell programs: bash as the original, sh where bash is missing.
func shellPath() string {
	if _, err := os.Stat("/bin/bash"); err == nil {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// lookPath finds file in the PATH of env, as execvp would; a relative path
// with a slash is relative to dir, the program's working directory.
func lookPath(file string, env []string, dir string) (string, error) {
	if strings.Contains(file, "/") {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if err := checkExecutable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	path, _ := envLookup(env, "PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	var firstErr error
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = dir // an empty PATH entry is the working directory
		} else if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("executable file not found in the program's PATH: %s (PATH=%s)", file, path)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no such file or directory: %s: %w", p, os.ErrNotExist)
		}
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("is a directory: %s", p)
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("permission denied: %s is not executable", p)
	}
	return nil
}

// checkWritable reports, as ErrPermission, a directory where file cannot
// be created, or a file that exists but cannot be written.
func checkWritable(file, what string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s directory %s does not exist (create it: mkdir -p %s)", ErrPermission, what, dir, dir)
		}
		return fmt.Errorf("%w: %s directory %s: %w", ErrPermission, what, dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s directory %s is not a directory", ErrPermission, what, dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		if _, serr := os.Stat(file); serr != nil || what == "pidfile" {
			return fmt.Errorf("%w: cannot write in %s directory %s (%w)", ErrPermission, what, dir, err)
		}
	}
	if _, err := os.Stat(file); err == nil {
		if err := unix.Access(file, unix.W_OK); err != nil {
			return fmt.Errorf("%w: cannot write %s %s (%w)", ErrPermission, what, file, err)
		}
	}
	return nil
}

// buildJob checks what can be checked before launching and computes the job.
func (m *Manager) buildJob(pc *Program) (*launch.Job, error) {
	if pc.ownDirs {
		// Config.Add put the pidfile or the logs in the state directory:
		// their directories are ours to create.
		for _, f := range []string{pc.Pidfile, pc.Stdout, pc.Stderr} {
			if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
				return nil, errs.File("creating "+filepath.Dir(f), err)
			}
		}
	}
	if pc.AutoPid {
		if err := checkWritable(pc.Pidfile, "pidfile"); err != nil {
			return nil, err
		}
	}
	if err := checkWritable(pc.Stdout, "stdout"); err != nil {
		return nil, err
	}
	if pc.Stderr != pc.Stdout {
		if err := checkWritable(pc.Stderr, "stderr"); err != nil {
			return nil, err
		}
	}
	dir := pc.Dir
	if dir == "" {
		h, err := home.Dir()
		if err != nil {
			return nil, fmt.Errorf("%w: cannot find the home directory, the programs' working directory: %w", ErrFailed, err)
		}
		dir = h
	} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: the working directory %s (directory) is not a directory: %w", ErrLaunch, dir, errOr(err, "not a directory"))
	}
	re := m.matcher().titleRE(pc)
	if re == "" {
		return nil, fmt.Errorf("%w: program %s has no proctitle_re and no argv to build one from", ErrInvalidConfig, pc.Name)
	}
	env := programEnv(pc, m.environ())
	job := &launch.Job{
		Env:        env,
		Dir:        dir,
		Stdout:     pc.Stdout,
		Stderr:     pc.Stderr,
		Window:     pc.SuccessSeconds,
		TermToKill: pc.TermToKill,
		Pidfile:    pc.Pidfile,
		AutoPid:    pc.AutoPid,
		TitleRE:    re,
	}
	if pc.UseShell {
		sh := shellPath()
		job.Argv = []string{sh, "-c", pc.Command}
		job.ShellArgv = job.Argv
		job.Path = sh
	} else {
		if len(pc.Args) == 0 {
			return nil, fmt.Errorf("%w: empty command", ErrLaunch)
		}
		p, err := lookPath(pc.Args[0], env, dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrLaunch, err)
		}
		job.Path = p
		job.Argv = pc.Args
	}
	return job, nil
}

// errOr is err, or an error saying msg when err is nil.
func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}
