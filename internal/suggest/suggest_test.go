package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "web", Closest("Web", []string{"api", "web"}))
	assert.Equal(t, "", Closest("web", nil))
	assert.Equal(t, "checkconfig", Closest("chekconfig", []string{"start", "stop", "checkconfig"}))
	assert.Equal(t, "", Closest("x", []string{"checkconfig"}))
	assert.Equal(t, 3, editDistance("kitten", "sitting"))
	assert.Equal(t, 1, editDistance("naïve", "naive"))
	assert.Equal(t, 1, editDistance("bsae", "base"), "a transposition is one edit")
}
