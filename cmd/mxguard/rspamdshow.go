package main

import (
	"fmt"
	"io"
	"strings"

	"mxguard/policy"
)

// printRspamd prints rspamd's answer for check, under "rspamd:": its
// action, score against the required score, and symbols; or why there is
// none. It prints nothing when the check did not run (no rspamd.url, or
// no rule reads it).
func printRspamd(w io.Writer, rec *policy.Record) {
	c, ok := rec.Checks["rspamd"]
	if !ok {
		return
	}
	if c.Result != "scanned" || rec.Facts == nil {
		fmt.Fprintf(w, "rspamd: no answer (%s): %s\n", c.Result, c.Detail)
		return
	}
	f := rec.Facts.Rspamd
	fmt.Fprintf(w, "rspamd:\n  action   %s\n  score    %g / %g\n", f.Action, f.Score, f.Required)
	symbols := "(none)"
	if len(f.Symbols) > 0 {
		symbols = strings.Join(f.Symbols, ", ")
	}
	fmt.Fprintf(w, "  symbols  %s\n", symbols)
}
