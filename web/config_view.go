package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/usrsvc/usrsvc"
)

// configEntry is one key of a program's resolved configuration, its value
// written as in a config file.
type configEntry struct {
	Key, Value string
}

// configEntries is a program's resolved configuration, in the order of the
// documentation's key table. Its JSON is an object with the same keys.
type configEntries []configEntry

// MarshalJSON writes the entries as one JSON object, in order.
func (c configEntries) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.Key)
		v, _ := json.Marshal(e.Value)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// resolvedConfig is pc with every default applied, as the program page and
// GET /api/v1/programs/NAME show it. [[Env]] values are not shown, only
// their names: they often hold secrets, and the page may be on a screen
// others see.
func resolvedConfig(pc *usrsvc.Program) configEntries {
	c := configEntries{
		{"defined_in", fmt.Sprintf("%s:%d", pc.File, pc.Line)},
		{"command", pc.Command},
		{"useshell", strconv.FormatBool(pc.UseShell)},
		{"pidfile", pc.Pidfile},
		{"stdout", pc.Stdout},
		{"stderr", pc.Stderr},
		{"enabled", strconv.FormatBool(pc.Enabled)},
		{"autopid", strconv.FormatBool(pc.AutoPid)},
		{"scan_for_process", strconv.FormatBool(pc.ScanForProcess)},
		{"proctitle_re", titleRE(pc)},
		{"autostart", strconv.FormatBool(pc.Autostart)},
		{"autorestart", autorestart(pc)},
		{"exit_codes", intList(pc.ExitCodes, "0")},
		{"maxrestarts", strconv.Itoa(pc.MaxRestarts)},
		{"restart_delay", seconds(pc.RestartDelay)},
		{"success_seconds", seconds(pc.SuccessSeconds)},
		{"term_to_kill_seconds", seconds(pc.TermToKill)},
		{"stop_signal", stopSignal(pc)},
		{"stop_group", strconv.FormatBool(pc.StopGroup)},
		{"reload_signal", reloadSignal(pc)},
		{"inherit_env", strconv.FormatBool(pc.InheritEnv)},
	}
	if pc.Numprocs > 1 {
		c = append(c, configEntry{"numprocs", strconv.Itoa(pc.Numprocs)},
			configEntry{"process_num", strconv.Itoa(pc.ProcessNum)})
	}
	if pc.Ready != "" {
		c = append(c, configEntry{"ready", pc.Ready}, configEntry{"ready_timeout", seconds(readyTimeout(pc))})
	} else {
		c = append(c, configEntry{"ready", "(none: started once it has run success_seconds)"})
	}
	if len(pc.DependsOn) > 0 {
		c = append(c, configEntry{"depends_on", strings.Join(pc.DependsOn, ", ")})
	}
	if pc.Defaults != "" {
		c = append(c, configEntry{"defaults", pc.Defaults})
	}
	if len(pc.EmailAlerts) > 0 {
		addrs := make([]string, len(pc.EmailAlerts))
		for i, a := range pc.EmailAlerts {
			addrs[i] = a.String()
		}
		c = append(c, configEntry{"email_alerts", strings.Join(addrs, ", ")})
	}
	if len(pc.Env) > 0 {
		keys := make([]string, len(pc.Env))
		for i, e := range pc.Env {
			keys[i], _, _ = strings.Cut(e, "=")
		}
		c = append(c, configEntry{"env", strings.Join(keys, ", ") + " (values not shown)"})
	}
	checks := pc.HTTPCheck != "" || pc.TCPCheck != "" || pc.ExecCheck != ""
	if pc.RSSLimitKB > 0 || pc.ActivityFile != "" || checks {
		c = append(c, configEntry{"monitor_after", seconds(pc.MonitorAfter)},
			configEntry{"monitor_interval", seconds(pc.MonitorInterval)})
		if pc.ActivityFile != "" {
			c = append(c, configEntry{"activityfile", pc.ActivityFile},
				configEntry{"activityfile_limit", seconds(pc.ActivityFileLimit)})
		}
		if pc.RSSLimitKB > 0 {
			c = append(c, configEntry{"rss_limit", strconv.FormatInt(pc.RSSLimitKB, 10)})
		}
	}
	if pc.HTTPCheck != "" {
		c = append(c, configEntry{"http_check", pc.HTTPCheck})
		if len(pc.HTTPExpect) > 0 {
			c = append(c, configEntry{"http_expect", intList(pc.HTTPExpect, "")})
		}
		if pc.HTTPBodyRE != nil {
			c = append(c, configEntry{"http_body_re", pc.HTTPBodyRE.String()})
		}
	}
	if pc.TCPCheck != "" {
		c = append(c, configEntry{"tcp_check", pc.TCPCheck})
	}
	if pc.ExecCheck != "" {
		c = append(c, configEntry{"exec_check", pc.ExecCheck})
	}
	if checks {
		failures, action := pc.CheckFailures, pc.CheckAction
		if failures <= 0 {
			failures = 3
		}
		if action == "" {
			action = "restart"
		}
		c = append(c, configEntry{"check_failures", strconv.Itoa(failures)}, configEntry{"check_action", action})
		if pc.CheckTimeout > 0 {
			c = append(c, configEntry{"check_timeout", seconds(pc.CheckTimeout)})
		}
	}
	return c
}

// autorestart is the autorestart key's value: true, false or unexpected.
func autorestart(pc *usrsvc.Program) string {
	if pc.Autorestart && pc.RestartUnexpected {
		return "unexpected"
	}
	return strconv.FormatBool(pc.Autorestart)
}

// stopSignal is the first signal of a stop.
func stopSignal(pc *usrsvc.Program) string {
	if pc.StopSignal == 0 {
		return "TERM"
	}
	return signalName(pc.StopSignal)
}

// reloadSignal is the signal a reload sends.
func reloadSignal(pc *usrsvc.Program) string {
	if pc.ReloadSignal == 0 {
		return "(none: the program cannot be reloaded)"
	}
	return signalName(pc.ReloadSignal)
}

// readyTimeout is ready_timeout with its default.
func readyTimeout(pc *usrsvc.Program) time.Duration {
	if pc.ReadyTimeout > 0 {
		return pc.ReadyTimeout
	}
	return 60 * time.Second
}

// intList writes a list of integers as a config file does ("" for none:
// empty).
func intList(v []int, empty string) string {
	if len(v) == 0 {
		return empty
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// titleRE is the proctitle_re in force, and whether it is the default.
func titleRE(pc *usrsvc.Program) string {
	if pc.ProcTitleRE != nil {
		return pc.ProcTitleRE.String()
	}
	return "(default: the whole command line, " + strings.Join(pc.Args, " ") + ")"
}

// seconds writes d as a config file's seconds value.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
