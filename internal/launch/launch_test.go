package launch

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This test binary imports the package, so it serves as its own launcher.

func TestSpawnProbe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Spawn(ctx, "/proc/self/exe", &Job{Probe: true}, nil)
	require.NoError(t, err)
	assert.Equal(t, Probed, res.Outcome)
}

// A caller of an older build sends its job in JSON: the launcher answers in
// JSON.
func TestLauncherAnswersJSONJobInJSON(t *testing.T) {
	t.Parallel()
	for job, want := range map[string]Outcome{`{"Probe":true}`: Probed, `{"Probe":`: Failed} {
		jobR, jobW, err := os.Pipe()
		require.NoError(t, err)
		resR, resW, err := os.Pipe()
		require.NoError(t, err)
		cmd := exec.Command("/proc/self/exe")
		cmd.Args = []string{"usrsvc-launcher"}
		cmd.Env = []string{EnvMarker + "=1"}
		cmd.ExtraFiles = []*os.File{jobR, resW}
		require.NoError(t, cmd.Start())
		jobR.Close()
		resW.Close()
		_, err = jobW.Write([]byte(job))
		require.NoError(t, err)
		jobW.Close()
		data, err := io.ReadAll(resR)
		resR.Close()
		require.NoError(t, err)
		require.NoError(t, cmd.Wait())
		var res Result
		require.NoError(t, json.Unmarshal(data, &res), string(data))
		assert.Equal(t, want, res.Outcome, string(data))
	}
}
