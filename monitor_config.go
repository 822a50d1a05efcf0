package usrsvc

import "github.com/usrsvc/usrsvc/internal/proc"

// configMonitors builds the monitors of a program's [[Monitor]] section: an
// [ActivityFile] when activityfile is set, then an [RSSLimit] reading fs
// when rss_limit is above 0. It does no I/O.
func configMonitors(pc *ProgramConfig, fs proc.FS) []Monitor {
	if pc == nil {
		return nil
	}
	var mons []Monitor
	mc := pc.Monitor
	if mc.ActivityFile != "" {
		mons = append(mons, ActivityFile{Path: mc.ActivityFile, Limit: mc.ActivityFileLimit})
	}
	if mc.RSSLimitKB > 0 {
		mons = append(mons, &RSSLimit{LimitKB: mc.RSSLimitKB, fs: fs})
	}
	return mons
}
