// Package version is the version of usrsvc's tools.
package version

// Version is the version of usrsvc.
const Version = "0.2.0"
