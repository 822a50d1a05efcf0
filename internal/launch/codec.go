package launch

import (
	"encoding/binary"
	"errors"
	"syscall"
	"time"
)

// Jobs and results cross the launcher's socket in a compact encoding
// rather than JSON: encoding/json's first use (reflection over the types,
// its field caches) was a measurable part of a launcher's CPU. A message is
// a magic byte, then its fields in a fixed order: integers as varints,
// strings as a uvarint length and the bytes, lists as a uvarint count and
// the items, times as a presence byte and Unix nanoseconds. A message that
// does not start with its magic byte is refused (errCodec).
const (
	jobMagic    = 0xA1
	resultMagic = 0xA2
)

// errCodec is wrapped by the errors of a malformed message.
var errCodec = errors.New("malformed message")

type encoder []byte

func (e *encoder) int(v int64)   { *e = binary.AppendVarint(*e, v) }
func (e *encoder) uint(v uint64) { *e = binary.AppendUvarint(*e, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); *e = append(*e, s...) }
func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) bool(b bool) {
	if b {
		*e = append(*e, 1)
	} else {
		*e = append(*e, 0)
	}
}

func (e *encoder) time(t time.Time) {
	e.bool(!t.IsZero())
	if !t.IsZero() {
		e.int(t.UnixNano())
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCodec
	}
	d.b = nil
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.uint()
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.fail()
		return nil
	}
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	return time.Unix(0, d.int())
}

// done returns the decoding error, or errCodec when bytes are left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errCodec
	}
	return d.err
}

// encodeJob encodes job for the launcher.
func encodeJob(job *Job) []byte {
	e := encoder{jobMagic}
	e.bool(job.Probe)
	e.str(job.Path)
	e.strs(job.Argv)
	e.strs(job.Env)
	e.str(job.Dir)
	e.str(job.Stdout)
	e.str(job.Stderr)
	e.int(int64(job.Window))
	e.str(job.Pidfile)
	e.bool(job.AutoPid)
	e.str(job.TitleRE)
	e.strs(job.ShellArgv)
	e.int(int64(job.TermToKill))
	e.bool(job.SetUmask)
	e.uint(uint64(job.Umask))
	e.uint(uint64(len(job.Limits)))
	for _, l := range job.Limits {
		e.int(int64(l.Resource))
		e.uint(l.Soft)
		e.uint(l.Hard)
	}
	e.bool(job.AwaitReady)
	return e
}

// decodeJob decodes a job encoded by [encodeJob] (data starts with jobMagic).
func decodeJob(data []byte, job *Job) error {
	d := decoder{b: data[1:]}
	*job = Job{
		Probe:   d.bool(),
		Path:    d.str(),
		Argv:    d.strs(),
		Env:     d.strs(),
		Dir:     d.str(),
		Stdout:  d.str(),
		Stderr:  d.str(),
		Window:  time.Duration(d.int()),
		Pidfile: d.str(),
		AutoPid: d.bool(),
		TitleRE: d.str(),
	}
	job.ShellArgv = d.strs()
	job.TermToKill = time.Duration(d.int())
	job.SetUmask = d.bool()
	job.Umask = uint32(d.uint())
	if n := d.uint(); n > uint64(len(d.b)) {
		d.fail()
	} else if n > 0 {
		job.Limits = make([]Limit, n)
		for i := range job.Limits {
			job.Limits[i] = Limit{Resource: int(d.int()), Soft: d.uint(), Hard: d.uint()}
		}
	}
	job.AwaitReady = d.bool()
	return d.done()
}

// encodeResult encodes r for the caller.
func encodeResult(r *Result) []byte {
	e := encoder{resultMagic}
	e.str(string(r.Outcome))
	e.str(r.Err)
	e.uint(uint64(r.Errno))
	e.str(string(r.Stage))
	e.bool(r.Process != nil)
	if p := r.Process; p != nil {
		e.int(int64(p.PID))
		e.uint(p.StartTicks)
		e.time(p.Started)
		e.str(p.Executable)
		e.str(p.Title)
		e.strs(p.Args)
	}
	e.bool(r.Wait != nil)
	if r.Wait != nil {
		e.uint(uint64(*r.Wait))
	}
	e.time(r.ExitTime)
	e.int(int64(r.Elapsed))
	e.strs(r.Stderr)
	e.strs(r.Seen)
	e.strs(r.OtherRoots)
	e.str(r.PidfileErr)
	e.str(r.SubreaperErr)
	e.str(r.Note)
	return e
}

// decodeResult decodes a result encoded by [encodeResult]; data that does
// not start with resultMagic is errCodec.
func decodeResult(data []byte, r *Result) error {
	if len(data) == 0 || data[0] != resultMagic {
		return errCodec
	}
	d := decoder{b: data[1:]}
	*r = Result{Outcome: Outcome(d.str()), Err: d.str(), Errno: syscall.Errno(d.uint()), Stage: Stage(d.str())}
	if d.bool() {
		r.Process = &Process{PID: int(d.int()), StartTicks: d.uint(), Started: d.time(),
			Executable: d.str(), Title: d.str(), Args: d.strs()}
	}
	if d.bool() {
		ws := syscall.WaitStatus(d.uint())
		r.Wait = &ws
	}
	r.ExitTime = d.time()
	r.Elapsed = time.Duration(d.int())
	r.Stderr = d.strs()
	r.Seen = d.strs()
	r.OtherRoots = d.strs()
	r.PidfileErr = d.str()
	r.SubreaperErr = d.str()
	r.Note = d.str()
	return d.done()
}
