package usrsvc

// LaunchError says exactly why a start failed: the exec error, how the
// program ended during success_seconds and what its stderr file gained, or
// the titles of what runs when nothing matches proctitle_re.
type LaunchError struct {
	Err     error       // ErrLaunch, ErrExited, ErrNoMatch, ...
	Message string      // what happened
	Exit    *ExitStatus // how it ended, for ErrExited and the shell's 126/127
	Stderr  []string    // lines the stderr file gained since the launch
	Titles  []string    // running descendants when nothing matched
}

// Error is the message: exactly why the start failed.
func (e *LaunchError) Error() string { return e.Message }

// Unwrap returns the sentinel error.
func (e *LaunchError) Unwrap() error { return e.Err }
