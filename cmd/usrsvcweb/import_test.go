package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usrsvc/usrsvc/internal/svimport"
	"github.com/usrsvc/usrsvc/internal/testproc"
)

// A supervisord configuration, converted by usrsvc import, run by usrsvcd
// and seen by the real supervisorctl through usrsvcweb as supervisord
// showed it: a Laravel-style queue worker with numprocs, and a web program.
func TestImportedConfigUnderSupervisorctl(t *testing.T) {
	needTool(t, "supervisorctl")
	t.Parallel()
	queue := testproc.New(t, "say", "--line=ready").WithDeadline(10 * time.Minute)
	web := testproc.New(t, "sleep").WithDeadline(10 * time.Minute)
	w := newWorld(t)
	conf := filepath.Join(w.dir, "supervisord.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`[supervisord]
logfile=%[1]s/supervisord.log

[program:queue]
process_name=%%(program_name)s_%%(process_num)02d
command=%[2]s q%%(process_num)d
autostart=true
autorestart=true
stopasgroup=true
killasgroup=true
numprocs=2
redirect_stderr=true
stdout_logfile=%[1]s/queue_%%(process_num)02d.log
stopwaitsecs=3

[program:web]
command=%[3]s
directory=%[1]s
startsecs=1
stdout_logfile=%[1]s/web.log
`, w.dir, queue.CommandLine(), web.CommandLine())), 0o600))

	res, err := svimport.Convert(conf, svimport.Options{Home: w.dir})
	require.NoError(t, err)
	require.Equal(t, 2, res.Programs)
	// The world's [Main] and [Web] (its state directory, usrsvcweb's
	// socket), then the converted sections but [Main].
	var keep []string
	for _, sec := range strings.Split("\n"+res.Single(), "\n[") {
		if strings.HasPrefix(sec, "Main]") || !strings.Contains(sec, "]") {
			continue
		}
		keep = append(keep, "["+sec+"\n")
	}
	w.writeConfig("", keep...)
	mustLoad(t, w.cfg) // passes checkconfig
	w.stopWeb()
	w.startWeb() // on the converted configuration
	w.runLoop()

	var out string
	deadline := time.Now().Add(60 * time.Second)
	for out, _ = w.ctl("status"); strings.Count(out, "RUNNING") != 3 && time.Now().Before(deadline); out, _ = w.ctl("status") {
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Count(out, "RUNNING") != 3 {
		cfgText, _ := os.ReadFile(w.cfg)
		t.Fatalf("usrsvcd did not start the three converted programs: %s\nconfig:\n%s", out, cfgText)
	}
	w.expect(0, "status", `(?m)^queue:queue_00\s+RUNNING\s+pid \d+, uptime`, `(?m)^queue:queue_01\s+RUNNING`,
		`(?m)^web\s+RUNNING`)
	w.expect(0, "tail queue:queue_01", `^ready\n`)
	w.expect(0, "restart queue:*", `queue:queue_00: stopped\nqueue:queue_01: stopped\nqueue:queue_00: started\nqueue:queue_01: started\n`)
	w.expect(0, "stop all")
}
