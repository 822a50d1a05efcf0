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
		{"autorestart", strconv.FormatBool(pc.Autorestart)},
		{"maxrestarts", strconv.Itoa(pc.MaxRestarts)},
		{"restart_delay", seconds(pc.RestartDelay)},
		{"success_seconds", seconds(pc.SuccessSeconds)},
		{"term_to_kill_seconds", seconds(pc.TermToKill)},
		{"inherit_env", strconv.FormatBool(pc.InheritEnv)},
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
	if pc.RSSLimitKB > 0 || pc.ActivityFile != "" {
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
	return c
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
