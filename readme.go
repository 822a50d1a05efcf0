package usrsvc

import _ "embed"

// README is the full documentation (README.md), printed by usrsvc --readme.
//
//go:embed README.md
var README string
