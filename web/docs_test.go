package web

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/configuration.md, the configuration reference, documents every key
// of [Web] that usrsvcweb reads.
func TestConfigurationManualHasEveryWebKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	require.NoError(t, err)
	for _, k := range webKeys {
		re := regexp.MustCompile("(?m)(^\\| *|, |`)" + regexp.QuoteMeta(k) + "( *\\||,|`)")
		assert.Regexp(t, re, string(data), "docs/configuration.md does not document [Web] %s", k)
	}
}
