package rules

import _ "embed"

// Default is the text of rules/default.yaml, the rule set mxguard runs when
// its config names no rules files.
//
//go:embed default.yaml
var Default []byte

// DefaultName is the name the default rule set goes by in errors and logs.
const DefaultName = "default.yaml (built in)"
