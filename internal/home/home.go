// Package home finds the account's home directory and the default main
// config file.
package home

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
)

// Dir is the current user's home directory: $HOME when it names an
// existing directory (login shells, cron, ssh and systemd's User= all set
// it to the account's home), else the passwd entry's. It is what "~" means
// in the config, the default state directory's base, and the programs'
// default working directory. $HOME wins so that an operator (or a test)
// can run a whole usrsvc world in another directory; the passwd entry keeps
// things working where HOME is unset.
func Dir() (string, error) {
	if h := os.Getenv("HOME"); filepath.IsAbs(h) {
		if st, err := os.Stat(h); err == nil && st.IsDir() {
			return h, nil
		}
	}
	if u, err := user.Current(); err == nil && filepath.IsAbs(u.HomeDir) {
		return u.HomeDir, nil
	}
	return "", errors.New("no home directory: the current user has no passwd entry and $HOME is not an absolute path")
}

// ConfigPath is the main config file used when none is given:
// $USRSVC_CONFIG if set, else $HOME/usrsvc.cfg (Dir when $HOME is unset).
func ConfigPath() string {
	if p := os.Getenv("USRSVC_CONFIG"); p != "" {
		return p
	}
	h := os.Getenv("HOME")
	if h == "" {
		h, _ = Dir()
	}
	return filepath.Join(h, "usrsvc.cfg")
}
