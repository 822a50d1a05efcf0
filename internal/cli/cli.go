// Package cli is the command-line parsing shared by usrsvc, usrsvcd and
// usrsvcweb:
// the standard flag package, with flags accepted before and after the
// positional arguments ("usrsvc status web --json" works like "usrsvc
// --json status web"). Both -flag and --flag work, as with package flag.
package cli

import (
	"flag"
	"fmt"
	"io"
)

// Parse parses args with fs and returns the positional arguments, in order.
// Flags may appear anywhere; "--" ends the flags: everything after it is
// positional. The error is fs.Parse's (flag.ErrHelp for -h or --help),
// already reported on fs's output per its ErrorHandling.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// fs.Parse stops at the first non-flag, or after a "--" it consumed.
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// Command is the flag set of a daemon command (usrsvcd, usrsvcweb): its
// errors go to stderr with the usage, and --help (or -h) prints the usage
// and the flags' defaults on stdout.
type Command struct {
	*flag.FlagSet
	usage  string
	stderr io.Writer
	help   bool
}

// NewCommand returns the flag set of command name, with --help and -h
// defined; usage is the text printed before the flags' defaults.
func NewCommand(name, usage string, stderr io.Writer) *Command {
	c := &Command{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), usage: usage, stderr: stderr}
	c.SetOutput(stderr)
	for _, n := range []string{"help", "h"} {
		c.BoolVar(&c.help, n, false, "print this help")
	}
	c.Usage = func() { c.PrintUsage(stderr) }
	return c
}

// PrintUsage writes the usage text and the flags' defaults to w.
func (c *Command) PrintUsage(w io.Writer) {
	fmt.Fprint(w, c.usage)
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(c.stderr)
}

// ParseArgs parses args as [Parse] does. help is true when --help or -h
// was given: the usage was printed on stdout, and nothing else is to be
// done. A parse error was already printed on stderr, with the usage.
func (c *Command) ParseArgs(args []string, stdout io.Writer) (positional []string, help bool, err error) {
	positional, err = Parse(c.FlagSet, args)
	if c.help {
		c.PrintUsage(stdout)
		return nil, true, nil
	}
	return positional, false, err
}
