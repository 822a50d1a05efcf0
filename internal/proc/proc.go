// Package proc is the only code of usrsvc that reads /proc.
package proc
