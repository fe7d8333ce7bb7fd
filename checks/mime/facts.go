package mime

import (
	"context"
	"fmt"
	"strings"

	"mxguard/checks/check"
)

// Facts are what the MIME walk found, as rules read them. Lists of names
// hold a part's file name, an archive member as ARCHIVE/MEMBER, or
// "part N" for a part without a name.
type Facts struct {
	Parts            []Part   `expr:"parts" json:"parts,omitempty" doc:"every MIME part and archive member, in message order"`
	Attachments      []string `expr:"attachments" json:"attachments,omitempty" doc:"names of the parts and archive members that have a file name"`
	Extensions       []string `expr:"extensions" json:"extensions,omitempty" doc:"their extensions, lower case, sorted, each once"`
	DetectedTypes    []string `expr:"detected_types" json:"detected_types,omitempty" doc:"media types detected from the parts' and members' first bytes, sorted, each once"`
	Executable       []string `expr:"executable" json:"executable,omitempty" doc:"executables (PE, ELF, Mach-O by their bytes) and script or program files (by extension: exe, js, vbs, ps1, bat, lnk, hta, jar, msi, …), at any depth"`
	MacroOffice      []string `expr:"macro_office" json:"macro_office,omitempty" doc:"Office files with VBA macros (OLE _VBA_PROJECT or Macros storage, OOXML vbaProject.bin)"`
	EncryptedArchive []string `expr:"encrypted_archive" json:"encrypted_archive,omitempty" doc:"ZIP archives with encrypted members, and encrypted Office documents"`
	TypeMismatch     []string `expr:"type_mismatch" json:"type_mismatch,omitempty" doc:"parts whose declared type the detected one contradicts (an application/pdf that is a PE)"`
	DoubleExtension  []string `expr:"double_extension" json:"double_extension,omitempty" doc:"names with a document's extension before an executable one (invoice.pdf.exe), or a right-to-left override"`
	HTMLForm         bool     `expr:"html_form" json:"html_form,omitempty" doc:"an HTML part or attachment holds a <form>"`
	HTMLJavascript   bool     `expr:"html_javascript" json:"html_javascript,omitempty" doc:"an HTML part or attachment holds a javascript: URL"`
	Malformed        []string `expr:"malformed" json:"malformed,omitempty" doc:"what is wrong with the MIME structure (a missing closing boundary, bad base64, an unparsable header), where"`
	Depth            int      `expr:"depth" json:"depth,omitempty" doc:"deepest nesting seen (multiparts, attached messages, archives in archives)"`
	Truncated        bool     `expr:"truncated" json:"truncated,omitempty" doc:"the walk stopped at a bound (mime.max_parts, max_depth, max_decoded_bytes, max_archive_members) or at the check's deadline: what follows was not inspected"`
	TruncatedBy      string   `expr:"truncated_by" json:"truncated_by,omitempty" doc:"the bound that stopped the walk"`
}

// Define builds the MIME check: at data, on the message as the backend
// receives it, with the bounds of its config section.
func (Facts) Define(env check.Env) check.Def {
	c, ok := env.Section.(Config)
	if !ok {
		c = DefaultConfig()
	}
	o := c.Options()
	o.Memory = env.Memory
	run := func(ctx context.Context, v check.View) check.Result {
		r, err := v.Content()
		if err != nil {
			return check.Errorf(check.Temperror, "reading the message: %v", err)
		}
		res := Parse(ctx, r, o)
		if res.Err != nil {
			return check.Errorf(check.Temperror, "MIME walk: %v", res.Err)
		}
		if ctx.Err() != nil {
			// The engine drops a late answer; say why for the log anyway.
			return check.Errorf(check.Temperror, "MIME walk: %v", ctx.Err())
		}
		return res.CheckResult()
	}
	quick := func(v check.View) (check.Result, bool) {
		if v.Size() > check.QuickMaxBytes {
			return check.Result{}, false
		}
		return run(context.Background(), v), true
	}
	return check.Def{Stage: check.Data, Run: run, Quick: quick}
}

// FactsOf returns the facts of r.
func (r Result) FactsOf() Facts {
	return Facts{Parts: r.Parts, Attachments: r.Attachments, Extensions: r.Extensions, DetectedTypes: r.DetectedTypes,
		Executable: r.Executable, MacroOffice: r.MacroOffice, EncryptedArchive: r.EncryptedArchive,
		TypeMismatch: r.TypeMismatch, DoubleExtension: r.DoubleExtension, HTMLForm: r.HTMLForm,
		HTMLJavascript: r.HTMLJavascript, Malformed: r.Malformed, Depth: r.Depth,
		Truncated: r.TruncatedBy != "", TruncatedBy: r.TruncatedBy}
}

// CheckResult is the check's result for r: fail when something a default
// rule refuses was found, with what it was.
func (r Result) CheckResult() check.Result {
	var found []string
	add := func(what string, names []string) {
		if len(names) > 0 {
			found = append(found, what+": "+strings.Join(names, ", "))
		}
	}
	add("executable", r.Executable)
	add("macros", r.MacroOffice)
	add("encrypted", r.EncryptedArchive)
	add("type mismatch", r.TypeMismatch)
	add("double extension", r.DoubleExtension)
	if r.TruncatedBy != "" {
		found = append(found, "truncated at "+r.TruncatedBy)
	}
	if len(r.Malformed) > 0 {
		found = append(found, fmt.Sprintf("malformed (%d)", len(r.Malformed)))
	}
	detail := fmt.Sprintf("%d parts, %d attachments", len(r.Parts), len(r.Attachments))
	if len(found) == 0 {
		return check.Result{Result: "pass", Detail: detail, Facts: r.FactsOf()}
	}
	return check.Result{Result: "fail", Detail: detail + "; " + strings.Join(found, "; "), Facts: r.FactsOf()}
}
