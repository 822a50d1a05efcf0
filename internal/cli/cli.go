// Package cli is the command-line parsing shared by usrsvc and usrsvcd:
// the standard flag package, with flags accepted before and after the
// positional arguments ("usrsvc status web --json" works like "usrsvc
// --json status web"). Both -flag and --flag work, as with package flag.
package cli

import "flag"

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
