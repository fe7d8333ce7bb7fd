package mime_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mxguard/checks/mime"
	"mxguard/checks/mime/mimetest"
	"mxguard/internal/membudget"
)

func parse(t *testing.T, msg []byte, o mime.Options) mime.Result {
	t.Helper()
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	return mime.Parse(context.Background(), bytes.NewReader(msg), o)
}

// TestFindings: each kind of dangerous attachment gives its fact, naming
// the file, and a clean message gives none.
func TestFindings(t *testing.T) {
	inner := mimetest.Zip(mimetest.File{Name: "setup.exe", Data: mimetest.PE()})
	tests := []struct {
		name  string
		parts []mimetest.Part
		want  func(r mime.Result) []string // the list that must name want
		names []string
	}{
		{"pe renamed pdf", []mimetest.Part{{Type: "application/pdf", Name: "invoice.pdf", Data: mimetest.PE()}},
			func(r mime.Result) []string { return r.Executable }, []string{"invoice.pdf"}},
		{"pe is a type mismatch", []mimetest.Part{{Type: "application/pdf", Name: "invoice.pdf", Data: mimetest.PE()}},
			func(r mime.Result) []string { return r.TypeMismatch }, []string{"invoice.pdf"}},
		{"elf", []mimetest.Part{{Type: "application/octet-stream", Name: "tool", Data: mimetest.ELF()}},
			func(r mime.Result) []string { return r.Executable }, []string{"tool"}},
		{"script by extension", []mimetest.Part{{Type: "text/plain", Name: "run.JS", Data: []byte("WScript.Echo(1)")}},
			func(r mime.Result) []string { return r.Executable }, []string{"run.JS"}},
		{"double extension", []mimetest.Part{{Type: "application/octet-stream", Name: "invoice.pdf.exe", Data: []byte("x")}},
			func(r mime.Result) []string { return r.DoubleExtension }, []string{"invoice.pdf.exe"}},
		{"double extension with blanks", []mimetest.Part{{Type: "application/octet-stream", Name: "scan.pdf    .scr", Data: []byte("x")}},
			func(r mime.Result) []string { return r.DoubleExtension }, []string{"scan.pdf    .scr"}},
		{"right-to-left override", []mimetest.Part{{Type: "application/octet-stream", Name: "invoice\u202efdp.exe", Data: []byte("x")}},
			func(r mime.Result) []string { return r.DoubleExtension }, []string{"invoice\u202efdp.exe"}},
		{"exe in zip", []mimetest.Part{{Type: "application/zip", Name: "a.zip", Data: inner}},
			func(r mime.Result) []string { return r.Executable }, []string{"a.zip/setup.exe"}},
		{"exe in zip in zip", []mimetest.Part{{Type: "application/zip", Name: "outer.zip", Data: mimetest.Zip(mimetest.File{Name: "in/inner.zip", Data: inner})}},
			func(r mime.Result) []string { return r.Executable }, []string{"outer.zip/in/inner.zip/setup.exe"}},
		{"script in zip by name only", []mimetest.Part{{Type: "application/zip", Name: "a.zip", Data: mimetest.Zip(mimetest.File{Name: "x.vbs", Data: []byte("MsgBox 1")})}},
			func(r mime.Result) []string { return r.Executable }, []string{"a.zip/x.vbs"}},
		{"encrypted zip", []mimetest.Part{{Type: "application/zip", Name: "secret.zip", Data: mimetest.Zip(mimetest.File{Name: "doc.pdf", Data: []byte("garbage"), Encrypted: true})}},
			func(r mime.Result) []string { return r.EncryptedArchive }, []string{"secret.zip"}},
		{"docm", []mimetest.Part{{Type: "application/vnd.ms-word.document.macroEnabled.12", Name: "report.docm", Data: mimetest.Docm()}},
			func(r mime.Result) []string { return r.MacroOffice }, []string{"report.docm"}},
		{"doc with Macros storage", []mimetest.Part{{Type: "application/msword", Name: "old.doc", Data: mimetest.CFB("Macros", "VBA")}},
			func(r mime.Result) []string { return r.MacroOffice }, []string{"old.doc"}},
		{"xls with _VBA_PROJECT_CUR", []mimetest.Part{{Type: "application/vnd.ms-excel", Name: "sheet.xls", Data: mimetest.CFB("_VBA_PROJECT_CUR")}},
			func(r mime.Result) []string { return r.MacroOffice }, []string{"sheet.xls"}},
		{"encrypted office", []mimetest.Part{{Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Name: "locked.docx", Data: mimetest.CFB("EncryptedPackage")}},
			func(r mime.Result) []string { return r.EncryptedArchive }, []string{"locked.docx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parse(t, mimetest.Message(tt.name, tt.parts...), mime.Options{})
			if got := tt.want(r); !slices.Equal(got, tt.names) {
				t.Errorf("got %q, want %q\nparts: %+v\nmalformed: %q", got, tt.names, r.Parts, r.Malformed)
			}
			if len(r.Malformed) > 0 || r.TruncatedBy != "" {
				t.Errorf("malformed %q, truncated %q", r.Malformed, r.TruncatedBy)
			}
		})
	}
}

// TestClean: ordinary attachments raise nothing, and every part is listed
// with its declared and detected types, name, size and encoding.
func TestClean(t *testing.T) {
	pdf := []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	msg := mimetest.Message("clean",
		mimetest.Part{Type: "application/pdf", Name: "report.pdf", Data: pdf},
		mimetest.Part{Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Name: "letter.docx", Data: mimetest.Docx()},
		mimetest.Part{Type: "application/x-zip-compressed", Name: "photos.zip", Data: mimetest.Zip(mimetest.File{Name: "a.txt", Data: []byte("hello")})},
		mimetest.Part{Type: "text/html; charset=utf-8", Data: []byte("<p>Hello <a href=\"https://example.org/\">there</a></p>")},
	)
	r := parse(t, msg, mime.Options{})
	if len(r.Executable)+len(r.MacroOffice)+len(r.EncryptedArchive)+len(r.TypeMismatch)+len(r.DoubleExtension)+len(r.Malformed) > 0 ||
		r.HTMLForm || r.HTMLJavascript || r.TruncatedBy != "" {
		t.Fatalf("clean message flagged: %+v", r)
	}
	if want := []string{"report.pdf", "letter.docx", "photos.zip", "photos.zip/a.txt"}; !slices.Equal(r.Attachments, want) {
		t.Errorf("attachments %q, want %q", r.Attachments, want)
	}
	if want := []string{"docx", "pdf", "txt", "zip"}; !slices.Equal(r.Extensions, want) {
		t.Errorf("extensions %q, want %q", r.Extensions, want)
	}
	pdfPart := r.Parts[2]
	if pdfPart.Path != "2" || pdfPart.Type != "application/pdf" || pdfPart.Detected != "application/pdf" ||
		pdfPart.Size != int64(len(pdf)) || pdfPart.Encoding != "base64" || pdfPart.Depth != 1 {
		t.Errorf("pdf part %+v", pdfPart)
	}
	if r.Depth != 2 {
		t.Errorf("depth %d, want 2 (a member of an attached archive)", r.Depth)
	}
	res := r.CheckResult()
	if res.Result != "pass" {
		t.Errorf("result %q %q", res.Result, res.Detail)
	}
}

// TestHTML: a form and a javascript: URL are found in HTML parts and
// attachments, also when the scheme is obfuscated the way browsers undo.
func TestHTML(t *testing.T) {
	tests := []struct {
		name, html string
		form, js   bool
	}{
		{"form", `<html><FORM action="https://x.test/">`, true, false},
		{"javascript", `<a href="JavaScript:alert(1)">x</a>`, false, true},
		{"javascript with tab and entity", "<a href=\"java\tscript&colon;alert(1)\">x</a>", false, true},
		{"plain", `<p>formal javascript is a language</p>`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []mimetest.Part{
				{Type: "text/html; charset=utf-8", Data: []byte(tt.html)},
				{Type: "application/octet-stream", Name: "page.html", Data: []byte(tt.html)},
			} {
				r := parse(t, mimetest.Message(tt.name, p), mime.Options{})
				if r.HTMLForm != tt.form || r.HTMLJavascript != tt.js {
					t.Errorf("%s: form %v js %v, want %v %v", p.Type, r.HTMLForm, r.HTMLJavascript, tt.form, tt.js)
				}
			}
		})
	}
}

// TestFileNames: RFC 2231 (continuations, charset) and RFC 2047 encoded
// names are decoded, and a name in a header the strict parser refuses is
// still found (a mail reader shows it).
func TestFileNames(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"rfc2231 continuation", "Content-Disposition: attachment;\r\n filename*0=\"invoice.\";\r\n filename*1=\"pdf.exe\"", "invoice.pdf.exe"},
		{"rfc2231 charset", "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.exe", "résumé.exe"},
		{"rfc2047", "Content-Disposition: attachment; filename=\"=?UTF-8?B?aW52b2ljZS5wZGYuZXhl?=\"", "invoice.pdf.exe"},
		{"name on Content-Type", "Content-Type: application/octet-stream; name=\"run.bat\"", "run.bat"},
		{"unquoted blank", "Content-Disposition: attachment; filename=invoice pdf.exe", "invoice pdf.exe"},
		{"duplicate parameter", "Content-Disposition: attachment; filename=\"a.txt\"; filename=\"a.exe\"", "a.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := "From: a@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
				tt.header + "\r\nContent-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n"
			r := parse(t, []byte(msg), mime.Options{})
			if len(r.Parts) != 2 || r.Parts[1].Filename != tt.want {
				t.Fatalf("parts %+v, want the file name %q", r.Parts, tt.want)
			}
			if !slices.Contains(r.Executable, tt.want) {
				t.Errorf("executable %q, want %q (an MZ header)", r.Executable, tt.want)
			}
		})
	}
}

// TestMalformedCorpus: every file of testdata/malformed gives the
// malformed fact that says what is wrong, where, and no panic; an
// executable before the damage is still found.
func TestMalformedCorpus(t *testing.T) {
	want := map[string]string{
		"01-missing-end.eml":           "part 2: the message ends inside the part",
		"02-truncated-boundary.eml":    "part 1: bad base64",
		"03-nested-same-boundary.eml":  "part 2: multipart without its boundary",
		"04-bad-base64.eml":            "part 2: bad base64",
		"05-no-boundary-parameter.eml": "message: multipart: boundary is empty",
		"06-boundary-never-seen.eml":   "message: multipart without its boundary",
		"07-bad-content-type.eml":      "part 1: Content-Type: mime: invalid media parameter",
		"08-corrupt-zip.eml":           "part 2: zip: ",
		"09-unknown-encoding.eml":      "part 2: encoding error",
	}
	files, _ := filepath.Glob("testdata/malformed/*.eml")
	if len(files) != len(want) {
		t.Fatalf("corpus has %d files, the table %d", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			r := parse(t, b, mime.Options{})
			w, ok := want[filepath.Base(f)]
			if !ok {
				t.Fatal("not in the table")
			}
			if !slices.ContainsFunc(r.Malformed, func(m string) bool { return strings.HasPrefix(m, w) }) {
				t.Errorf("malformed %q, want one starting %q", r.Malformed, w)
			}
			if bytes.Contains(b, []byte("TVqQAAMAAAAEAAAA")) && len(r.Executable) == 0 {
				t.Errorf("the executable before the damage was not found")
			}
		})
	}
}

// TestBounds: past each bound the walk stops and says which bound.
func TestBounds(t *testing.T) {
	many := make([]mimetest.Part, 20)
	for i := range many {
		many[i] = mimetest.Part{Type: "text/plain", Data: []byte("x")}
	}
	deep := mimetest.Zip(mimetest.File{Name: "x.txt", Data: []byte("x")})
	for range 5 {
		deep = mimetest.Zip(mimetest.File{Name: "d.zip", Data: deep})
	}
	big := mimetest.Zip(mimetest.File{Name: "zeros.zip", Data: mimetest.Zip(mimetest.File{Name: "zeros", Data: make([]byte, 3<<20), Stored: true})})
	members := make([]mimetest.File, 30)
	for i := range members {
		members[i] = mimetest.File{Name: strings.Repeat("m", i+1), Data: []byte("x")}
	}
	tests := []struct {
		name  string
		msg   []byte
		o     mime.Options
		bound string
	}{
		{"parts", mimetest.Message("p", many...), mime.Options{MaxParts: 10}, "max_parts"},
		{"depth", mimetest.Message("d", mimetest.Part{Type: "application/zip", Name: "d.zip", Data: deep}), mime.Options{MaxDepth: 4}, "max_depth"},
		{"decoded bytes", mimetest.Message("b", mimetest.Part{Type: "application/zip", Name: "z.zip", Data: big}), mime.Options{MaxDecodedBytes: 1 << 20}, "max_decoded_bytes"},
		{"archive members", mimetest.Message("m", mimetest.Part{Type: "application/zip", Name: "m.zip", Data: mimetest.Zip(members...)}), mime.Options{MaxArchiveMembers: 10}, "max_archive_members"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parse(t, tt.msg, tt.o)
			if r.TruncatedBy != tt.bound {
				t.Fatalf("truncated by %q, want %q", r.TruncatedBy, tt.bound)
			}
			f := r.FactsOf()
			if !f.Truncated {
				t.Error("truncated fact not set")
			}
			if r.CheckResult().Result != "fail" {
				t.Errorf("a truncated walk passed: %+v", r.CheckResult())
			}
		})
	}
}

// TestArchiveCopyRemoved: an archive bigger than the in-memory copy goes
// to a temporary file, which is gone when the walk ends.
func TestArchiveCopyRemoved(t *testing.T) {
	dir := t.TempDir()
	noise := make([]byte, 2<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i/251)
	}
	z := mimetest.Zip(mimetest.File{Name: "noise.bin", Data: noise}, mimetest.File{Name: "x.exe", Data: mimetest.PE()})
	r := parse(t, mimetest.Message("big", mimetest.Part{Type: "application/zip", Name: "big.zip", Data: z}), mime.Options{TempDir: dir})
	if !slices.Equal(r.Executable, []string{"big.zip/x.exe"}) {
		t.Fatalf("executable %q", r.Executable)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the temp dir: %v", left)
	}
}

// TestAttachedMessage: a message/rfc822 part is walked as a message.
func TestAttachedMessage(t *testing.T) {
	inner := mimetest.Message("inner", mimetest.Part{Type: "application/octet-stream", Name: "evil.exe", Data: mimetest.PE()})
	msg := "From: a@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" + string(inner) + "\r\n--b--\r\n"
	r := parse(t, []byte(msg), mime.Options{})
	if !slices.Equal(r.Executable, []string{"evil.exe"}) {
		t.Fatalf("executable %q; parts %+v", r.Executable, r.Parts)
	}
	if r.Depth != 3 {
		t.Errorf("depth %d, want 3", r.Depth)
	}
}

// TestTempDirFailure: an archive copy that cannot be written is this
// machine's failure: Err is set (the check answers temperror), and the
// message is not called truncated or malformed.
func TestTempDirFailure(t *testing.T) {
	noise := make([]byte, 2<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i/251)
	}
	z := mimetest.Zip(mimetest.File{Name: "noise.bin", Data: noise, Stored: true})
	msg := mimetest.Message("big", mimetest.Part{Type: "application/zip", Name: "big.zip", Data: z})
	r := mime.Parse(context.Background(), bytes.NewReader(msg), mime.Options{TempDir: filepath.Join(t.TempDir(), "gone")})
	if r.Err == nil || r.TruncatedBy != "" || len(r.Malformed) != 0 {
		t.Fatalf("err %v, truncated %q, malformed %q", r.Err, r.TruncatedBy, r.Malformed)
	}
}

// TestEveryFieldIsAFact: every field of the facts types is named and
// documented, since the rules' schema lists every field.
func TestEveryFieldIsAFact(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[mime.Facts](), reflect.TypeFor[mime.Part]()} {
		for f := range typ.Fields() {
			if f.Tag.Get("expr") == "" || f.Tag.Get("json") == "" || f.Tag.Get("doc") == "" {
				t.Errorf("%s.%s lacks an expr, json or doc tag", typ.Name(), f.Name)
			}
		}
	}
}

// TestLenientNameWithInvalidUTF8: a broken header with bytes that are not
// UTF-8 before the name still gives the name, and no panic.
func TestLenientNameWithInvalidUTF8(t *testing.T) {
	msg := "From: a@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Disposition: attachment; x=\"\xff\xfe\xc3\"; ; filename=run.exe; ===\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--b--\r\n"
	r := parse(t, []byte(msg), mime.Options{})
	if !slices.Equal(r.Executable, []string{"run.exe"}) {
		t.Fatalf("executable %q; parts %+v; malformed %q", r.Executable, r.Parts, r.Malformed)
	}
}

// TestArchiveCopyMemoryBudget: in-memory archive copies are taken from
// the process-wide budget and given back; when the budget is spent the
// copy goes to the temporary folder and the walk still sees inside.
func TestArchiveCopyMemoryBudget(t *testing.T) {
	z := mimetest.Zip(mimetest.File{Name: "in.zip", Data: mimetest.Zip(mimetest.File{Name: "x.exe", Data: mimetest.PE()})})
	msg := mimetest.Message("budget", mimetest.Part{Type: "application/zip", Name: "a.zip", Data: z})
	for _, limit := range []int64{0, 100, 64 << 20} {
		b := membudget.New(limit)
		r := parse(t, msg, mime.Options{Memory: b})
		if !slices.Equal(r.Executable, []string{"a.zip/in.zip/x.exe"}) || r.Err != nil {
			t.Errorf("budget %d: executable %q, err %v", limit, r.Executable, r.Err)
		}
		if b.InUse() != 0 {
			t.Errorf("budget %d: %d bytes still reserved after the walk", limit, b.InUse())
		}
	}
}
