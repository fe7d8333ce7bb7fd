package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"mxguard/checks/mime"
	"mxguard/config"
	"mxguard/policy"
)

// printMIMETree prints the message's MIME tree for check: every part and
// archive member, indented by depth, with its declared and detected types,
// file name, size, encoding and what was found. It shows the mime check's
// facts when a rule made it run; otherwise it walks the message itself,
// with the same bounds, so the tree is there whatever the rules.
func printMIMETree(w io.Writer, rec *policy.Record, cfg *config.Config, content func() (io.Reader, error)) {
	var f mime.Facts
	if rec.Facts != nil {
		f = rec.Facts.MIME
	}
	note := ""
	if len(f.Parts) == 0 {
		r, err := content()
		if err != nil {
			fmt.Fprintf(w, "mime: (cannot read the message: %v)\n", err)
			return
		}
		f = mime.Parse(context.Background(), r, cfg.MIME.Options()).FactsOf()
		note = " (no rule needed the mime check: walked for this display)"
	}
	fmt.Fprintf(w, "mime:%s\n", note)
	for _, p := range f.Parts {
		var b strings.Builder
		b.WriteString(strings.Repeat("  ", p.Depth+1))
		switch {
		case p.Member:
			b.WriteString(p.Path)
		case p.Path == "":
			b.WriteString(p.Type)
		default:
			b.WriteString(p.Path + " " + p.Type)
		}
		if p.Detected != "" {
			fmt.Fprintf(&b, " (detected %s)", p.Detected)
		}
		if p.Filename != "" && !p.Member {
			fmt.Fprintf(&b, " %q", p.Filename)
		}
		if p.Detected != "" {
			fmt.Fprintf(&b, " %d bytes", p.Size)
		}
		if p.Encoding != "" {
			b.WriteString(", " + p.Encoding)
		}
		if p.Flags != "" {
			fmt.Fprintf(&b, " [%s]", p.Flags)
		}
		fmt.Fprintln(w, b.String())
	}
	for _, m := range f.Malformed {
		fmt.Fprintf(w, "  malformed: %s\n", m)
	}
	if f.Truncated {
		fmt.Fprintf(w, "  truncated: the walk stopped at %s; what follows was not inspected\n", f.TruncatedBy)
	}
	if f.HTMLForm || f.HTMLJavascript {
		fmt.Fprintf(w, "  html: form %v, javascript: URL %v\n", f.HTMLForm, f.HTMLJavascript)
	}
}
