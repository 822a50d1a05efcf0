// Package cli is the command-line parsing and help shared by usrsvc, usrsvcd
// and usrsvcweb, so that the three tools behave alike:
//
//   - options may come before or after the positional arguments ("usrsvc
//     status web --json" works like "usrsvc --json status web"); "--" ends
//     them;
//   - options are written with two dashes (--config FILE), one-letter ones
//     with one (-q); package flag's single-dash spelling of long options
//     (-config) is still accepted;
//   - --help and -h print the help on stdout, and the caller exits 0;
//   - a usage error (an unknown option, a missing value) is one line on
//     stderr naming the tool, with the closest option suggested, followed
//     by the synopsis; the caller exits 131 (INVALID_ACTION);
//   - the option list of the help is formatted here from the options
//     themselves, so the help cannot forget one.
package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/usrsvc/usrsvc/internal/suggest"
)

// Parse parses args with fs and returns the positional arguments, in order.
// Flags may appear anywhere; "--" ends the flags: everything after it is
// positional. The error is fs.Parse's (flag.ErrHelp for -h or --help when
// fs does not define them), already reported on fs's output per its
// ErrorHandling.
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

// Option is one option of a Command.
type Option struct {
	// Names are the option's names without dashes, the one-letter ones
	// first: "c", "config" is shown as -c, --config.
	Names []string
	// Arg is the placeholder of the option's value in the help (FILE, N),
	// "" for a boolean option.
	Arg string
	// Usage is the one-line description shown in the help.
	Usage string
	// Hidden options are accepted but not listed (internal ones).
	Hidden bool
	// For lists the actions the option goes with ("tail"), shown in the
	// help; empty: every action. [Command.Misplaced] checks it.
	For []string

	set bool
}

// Long is the option's first long name with its dashes (--config), or its
// short one (-q) when it has no long name.
func (o *Option) Long() string {
	for _, n := range o.Names {
		if len(n) > 1 {
			return "--" + n
		}
	}
	return dash(o.Names[0])
}

// IsSet reports whether the option was given on the command line.
func (o *Option) IsSet() bool { return o.set }

// dash writes a name as it is typed: -q, --json.
func dash(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// Command is the options of a command and its help.
type Command struct {
	name   string
	usage  string // synopsis (up to the first blank line) and description
	footer string
	fs     *flag.FlagSet
	opts   []*Option
	byName map[string]*Option
	help   bool
	stderr io.Writer
}

// New returns the options of the command name with --help and -h defined.
// usage is the text the help starts with: its first paragraph is the
// synopsis ("usage: usrsvcd [--config FILE] ..."), repeated after a usage
// error; the rest describes the command (its actions). The help then lists
// the options, then footer (return codes, for example).
func New(name, usage, footer string, stderr io.Writer) *Command {
	c := &Command{name: name, usage: usage, footer: footer, stderr: stderr,
		fs: flag.NewFlagSet(name, flag.ContinueOnError), byName: map[string]*Option{}}
	c.fs.SetOutput(io.Discard) // errors are worded by Parse
	c.fs.Usage = func() {}
	c.Bool(&c.help, "h help", "print this help and exit")
	return c
}

// add records an option defined under every name of names (space-separated).
func (c *Command) add(names, arg, usage string, define func(name string)) *Option {
	o := &Option{Names: strings.Fields(names), Arg: arg, Usage: usage}
	slices.SortStableFunc(o.Names, func(a, b string) int { return len(a) - len(b) })
	for _, n := range o.Names {
		define(n)
		c.byName[n] = o
	}
	c.opts = append(c.opts, o)
	return o
}

// String defines a string option; *p's value is its default.
func (c *Command) String(p *string, names, arg, usage string) *Option {
	return c.add(names, arg, usage, func(n string) { c.fs.StringVar(p, n, *p, usage) })
}

// Bool defines a boolean option.
func (c *Command) Bool(p *bool, names, usage string) *Option {
	return c.add(names, "", usage, func(n string) { c.fs.BoolVar(p, n, *p, usage) })
}

// Int defines an integer option; *p's value is its default.
func (c *Command) Int(p *int, names, arg, usage string) *Option {
	return c.add(names, arg, usage, func(n string) { c.fs.IntVar(p, n, *p, usage) })
}

// Parse parses args (options anywhere, see [Parse]) and returns the
// positional arguments. help is true when --help or -h was given: the help
// was printed on stdout and the caller exits 0. A usage error was printed
// on stderr (see [Command.UsageError]); the caller exits 131.
func (c *Command) Parse(args []string, stdout io.Writer) (positional []string, help bool, err error) {
	positional, err = Parse(c.fs, args)
	if c.help {
		c.PrintHelp(stdout)
		return nil, true, nil
	}
	if err != nil {
		c.UsageError("%s", c.describe(err))
		return nil, false, err
	}
	c.fs.Visit(func(f *flag.Flag) { c.byName[f.Name].set = true })
	return positional, false, nil
}

// describe words a parse error of package flag in the tools' own terms:
// options with their dashes, the closest option suggested.
func (c *Command) describe(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		s := "unknown option " + dash(name)
		if best := suggest.Closest(name, c.names()); best != "" {
			s += "; did you mean " + dash(best) + "?"
		}
		return s
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		if o := c.byName[name]; o != nil {
			return fmt.Sprintf("option %s needs a value (%s %s)", dash(name), dash(name), o.Arg)
		}
		return "option " + dash(name) + " needs a value"
	}
	// invalid value "x" for flag -n: parse error; invalid boolean value
	// "x" for -json: parse error
	for _, sep := range []string{" for flag -", " for -"} {
		if i := strings.Index(msg, sep); i >= 0 {
			name, why, _ := strings.Cut(msg[i+len(sep):], ":")
			return msg[:i] + " for " + dash(name) + ":" + why
		}
	}
	return msg
}

// names lists every option name, for suggestions.
func (c *Command) names() []string {
	var out []string
	for _, o := range c.opts {
		if !o.Hidden {
			out = append(out, o.Names...)
		}
	}
	return out
}

// Synopsis is the first paragraph of the usage text.
func (c *Command) Synopsis() string {
	s, _, _ := strings.Cut(c.usage, "\n\n")
	return strings.TrimRight(s, "\n") + "\n"
}

// UsageError prints "name: message" on stderr, then the synopsis and where
// to read more. The caller returns 131 (INVALID_ACTION).
func (c *Command) UsageError(format string, args ...any) {
	fmt.Fprintf(c.stderr, "%s: %s\n%s(%s --help shows every option)\n", c.name, fmt.Sprintf(format, args...),
		c.Synopsis(), c.name)
}

// UnknownAction reports an unknown action with the closest known one.
func (c *Command) UnknownAction(action string, actions []string) {
	msg := fmt.Sprintf("unknown action %q", action)
	if best := suggest.Closest(action, actions); best != "" {
		msg += "; did you mean " + best + "?"
	} else {
		msg += " (actions: " + strings.Join(actions, ", ") + ")"
	}
	c.UsageError("%s", msg)
}

// Misplaced returns the first option given that does not go with action
// (its For list does not name it), or nil.
func (c *Command) Misplaced(action string) *Option {
	for _, o := range c.opts {
		if o.set && len(o.For) > 0 && !slices.Contains(o.For, action) {
			return o
		}
	}
	return nil
}

// SuggestOption returns the option whose name is closest to word (an
// argument where none is expected, typed without its dashes), or nil.
func (c *Command) SuggestOption(word string) *Option {
	if best := suggest.Closest(strings.TrimLeft(word, "-"), c.names()); best != "" {
		return c.byName[best]
	}
	return nil
}

// PrintHelp writes the whole help to w: the usage text, the options, the
// footer.
func (c *Command) PrintHelp(w io.Writer) {
	fmt.Fprint(w, strings.TrimRight(c.usage, "\n")+"\n\nOptions:\n"+c.OptionList())
	if c.footer != "" {
		fmt.Fprint(w, "\n"+strings.TrimRight(c.footer, "\n")+"\n")
	}
}

// Options returns the visible options, in the order they were defined,
// --help last.
func (c *Command) Options() []*Option {
	var out []*Option
	for _, o := range c.opts[1:] {
		if !o.Hidden {
			out = append(out, o)
		}
	}
	return append(out, c.opts[0])
}

// helpWidth is the width the help is written for; optionColumn bounds where
// the descriptions start.
const (
	helpWidth    = 80
	optionColumn = 26
)

// OptionList formats the visible options, one per line: "  -c, --config
// FILE  description", the descriptions aligned and wrapped to 80 columns.
func (c *Command) OptionList() string {
	type row struct{ left, right string }
	var rows []row
	col := 0
	for _, o := range c.Options() {
		var names []string
		for _, n := range o.Names {
			names = append(names, dash(n))
		}
		left := strings.Join(names, ", ")
		if len(o.Names[0]) > 1 {
			left = "    " + left // long-only options line up under the long names
		}
		if o.Arg != "" {
			left += " " + o.Arg
		}
		right := o.Usage
		if len(o.For) > 0 {
			right = strings.Join(o.For, ", ") + ": " + right
		}
		rows = append(rows, row{"  " + left, right})
		if w := len(left) + 4; w <= optionColumn {
			col = max(col, w)
		}
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.left)
		pad := col - len(r.left)
		if pad < 2 {
			b.WriteString("\n")
			pad = col
		}
		b.WriteString(strings.Repeat(" ", pad))
		b.WriteString(wrap(r.right, col, helpWidth))
		b.WriteString("\n")
	}
	return b.String()
}

// wrap wraps text to width, the lines after the first indented by indent.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	n := indent
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if n+1+len(word) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				n = indent
			} else {
				b.WriteString(" ")
				n++
			}
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}
