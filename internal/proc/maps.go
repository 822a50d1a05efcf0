package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Mapping is one mapping of /proc/PID/smaps: an address range, its
// permissions ("r-xp"), what is mapped there (a file's path, "[stack]", or
// "" for anonymous memory), and how much of it is anonymous — for a file
// mapping, the pages that no longer match the file (copy-on-write copies,
// such as the relocated read-only data of a position-independent
// executable).
type Mapping struct {
	Start, End uintptr
	Perms      string
	Path       string
	AnonKB     int64
}

// Mappings reads /proc/PID/smaps (pid 0: /proc/self/smaps).
func (fs FS) Mappings(pid int) ([]Mapping, error) {
	path := fs.root() + "/self/smaps"
	if pid != 0 {
		path = fs.path(pid, "smaps")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, wrapErr("read", path, err)
	}
	ms, err := parseMaps(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ms, nil
}

// parseMaps parses maps or smaps content: a header line "start-end perms
// offset dev inode [path]" per mapping, and in smaps its "Key: value kB"
// lines, of which Anonymous is kept.
func parseMaps(b []byte) ([]Mapping, error) {
	var ms []Mapping
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) > 0 && bytes.HasSuffix(f[0], []byte(":")) {
			// An smaps field of the mapping above.
			if len(ms) > 0 && string(f[0]) == "Anonymous:" && len(f) >= 2 {
				n, err := strconv.ParseInt(string(f[1]), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("line %q: %w", line, ErrFormat)
				}
				ms[len(ms)-1].AnonKB = n
			}
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("line %q: %w", line, ErrFormat)
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if !ok || err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("range %q: %w", f[0], ErrFormat)
		}
		m := Mapping{Start: uintptr(start), End: uintptr(end), Perms: string(f[1])}
		if len(f) >= 6 {
			// The path is the rest of the line (it may hold spaces).
			m.Path = string(bytes.TrimLeft(line[bytes.Index(line, f[5]):], " "))
		}
		ms = append(ms, m)
	}
	return ms, nil
}
