package usrsvc

import "github.com/usrsvc/usrsvc/internal/proc"

// configMonitors builds the monitors of a program's [[Monitor]] section.
func configMonitors(pc *ProgramConfig, fs proc.FS) []Monitor {
	return nil
}
