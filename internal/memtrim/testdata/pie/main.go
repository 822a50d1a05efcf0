// Command pie trims its own mappings, then runs code that reads the
// relocated read-only data of a position-independent executable (type
// descriptors, interface tables, string headers): built with
// -buildmode=pie, it crashes or prints garbage if Trim dropped pages that
// were relocated at load time.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/usrsvc/usrsvc/internal/memtrim"
)

type shape interface{ area() float64 }
type square struct{ s float64 }
type circle struct{ r float64 }

func (q square) area() float64 { return q.s * q.s }
func (c circle) area() float64 { return 3 * c.r * c.r }

var table = []struct {
	name string
	s    shape
}{{"square", square{2}}, {"circle", circle{1}}}

func main() {
	if _, err := memtrim.Trim(); err != nil {
		fmt.Fprintln(os.Stderr, "trim:", err)
		os.Exit(2)
	}
	var out []string
	for _, e := range table {
		out = append(out, fmt.Sprintf("%s=%v", e.name, e.s.area()))
	}
	sort.Strings(out)
	err := fmt.Errorf("wrapped: %w", os.ErrNotExist)
	fmt.Println(strings.Join(out, ","), errors.Is(err, os.ErrNotExist))
}
