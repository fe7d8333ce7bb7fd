package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/mime/mimetest"
	"mxguard/checks/resolver/dnstest"
)

// mimeMxguard starts mxguard in front of the sink with the default rules,
// or, relaxed, with a copy of them whose encrypted-archive rule is set to
// monitor, as docs/rules.md tells a site that accepts encrypted archives.
func mimeMxguard(t *testing.T, relaxed bool) (listen, dir string) {
	t.Helper()
	if !relaxed {
		return sinkMxguard(t, "")
	}
	out, err := exec.Command(binary, "rules", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	const rule = "  - name: encrypted-archive\n    stage: data\n"
	if !bytes.Contains(out, []byte(rule)) {
		t.Fatalf("the default rules have no encrypted-archive rule:\n%s", out)
	}
	out = bytes.Replace(out, []byte(rule), []byte(rule+"    mode: monitor\n"), 1)
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return sinkMxguard(t, "rules: ["+path+"]\n")
}

// TestDangerousAttachmentsRefused: each kind of attachment the default
// rules refuse gets 554 5.7.1 naming the file, through mxguard serve, and
// nothing reaches the backend.
func TestDangerousAttachmentsRefused(t *testing.T) {
	exeInZip := mimetest.Zip(mimetest.File{Name: "inner.zip", Data: mimetest.Zip(mimetest.File{Name: "setup.exe", Data: mimetest.PE()})})
	tests := []struct {
		name string
		part mimetest.Part
		want string
	}{
		{"PE renamed .pdf", mimetest.Part{Type: "application/pdf", Name: "invoice.pdf", Data: mimetest.PE()},
			"554 5.7.1 message refused: executable or script file: invoice.pdf"},
		{"zip in zip holding an exe", mimetest.Part{Type: "application/zip", Name: "docs.zip", Data: exeInZip},
			"554 5.7.1 message refused: executable or script file: docs.zip/inner.zip/setup.exe"},
		{"script", mimetest.Part{Type: "application/octet-stream", Name: "update.ps1", Data: []byte("Write-Host 1")},
			"554 5.7.1 message refused: executable or script file: update.ps1"},
		{"macro .docm", mimetest.Part{Type: "application/vnd.ms-word.document.macroEnabled.12", Name: "report.docm", Data: mimetest.Docm()},
			"554 5.7.1 message refused: Office document with macros: report.docm"},
		{"OLE .doc with _VBA_PROJECT", mimetest.Part{Type: "application/msword", Name: "old.doc", Data: mimetest.CFB("Macros", "_VBA_PROJECT")},
			"554 5.7.1 message refused: Office document with macros: old.doc"},
		{"encrypted zip", mimetest.Part{Type: "application/zip", Name: "secret.zip", Data: mimetest.Zip(mimetest.File{Name: "scan.pdf", Data: []byte("ciphertext"), Encrypted: true})},
			"554 5.7.1 message refused: encrypted archive, whose content cannot be inspected: secret.zip"},
	}
	listen, dir := mimeMxguard(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := openTx(t, "", listen)
			got := v.data(string(mimetest.Message(tt.name, tt.part)), "554 ")
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if msgs, _ := storedMessages(t, dir); len(msgs) != 0 {
		t.Errorf("the backend got %d messages", len(msgs))
	}
}

// TestEncryptedArchiveRelaxed: with the encrypted-archive rule in monitor
// mode, an encrypted ZIP is delivered, while an executable is still
// refused.
func TestEncryptedArchiveRelaxed(t *testing.T) {
	listen, dir := mimeMxguard(t, true)
	v := openTx(t, "", listen)
	v.data(string(mimetest.Message("encrypted", mimetest.Part{Type: "application/zip", Name: "secret.zip",
		Data: mimetest.Zip(mimetest.File{Name: "scan.pdf", Data: []byte("ciphertext"), Encrypted: true})})), "250 ")
	if msgs, _ := storedMessages(t, dir); len(msgs) != 1 {
		t.Fatalf("the backend got %d messages, want the encrypted archive", len(msgs))
	}
	v = openTx(t, "", listen)
	v.data(string(mimetest.Message("exe", mimetest.Part{Type: "application/pdf", Name: "invoice.pdf", Data: mimetest.PE()})),
		"554 5.7.1 message refused: executable or script file: invoice.pdf")
}

// TestCleanAttachmentsDeliveredByteForByte: a message with ordinary
// attachments (a PDF, a DOCX, a ZIP, an HTML part) is delivered, and what
// the backend stores is what was sent, after the header fields mxguard
// adds at the top.
func TestCleanAttachmentsDeliveredByteForByte(t *testing.T) {
	listen, dir := mimeMxguard(t, false)
	sent := mimetest.Message("clean",
		mimetest.Part{Type: "application/pdf", Name: "report.pdf", Data: []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")},
		mimetest.Part{Type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Name: "letter.docx", Data: mimetest.Docx()},
		mimetest.Part{Type: "application/zip", Name: "photos.zip", Data: mimetest.Zip(mimetest.File{Name: "a.jpg", Data: []byte("\xff\xd8\xff\xe0 JFIF")})},
		mimetest.Part{Type: "text/html; charset=utf-8", Data: []byte("<p>Hello <a href=\"https://example.org/\">there</a></p>")},
	)
	v := openTx(t, "", listen)
	v.data(string(sent), "250 ")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("the backend holds %d messages, want 1", len(files))
	}
	got, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(got, sent) {
		t.Fatalf("the stored message does not end with the message sent:\n%s", got)
	}
	// What comes before is header fields mxguard added, and the sink's
	// own delivery fields, nothing else.
	for _, line := range strings.SplitAfter(string(got[:len(got)-len(sent)]), "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || !(name == "Received" || name == "Return-Path" || name == "Delivered-To" || name == "Authentication-Results" || strings.HasPrefix(name, "X-Mxguard-")) {
			t.Errorf("before the message sent: %q", line)
		}
	}
}

// TestCheckShowsMIMETree: mxguard check prints the MIME tree of a stored
// message, archive members included, with what each part was found to be.
func TestCheckShowsMIMETree(t *testing.T) {
	msg := mimetest.Message("tree",
		mimetest.Part{Type: "application/pdf", Name: "invoice.pdf", Data: mimetest.PE()},
		mimetest.Part{Type: "application/zip", Name: "docs.zip", Data: mimetest.Zip(mimetest.File{Name: "readme.txt", Data: []byte("hello")})},
	)
	path := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	out, err := exec.Command(binary, "check", "--dns", srv.Addr(), "--client-ip", "127.0.0.1", "--mail-from", "alice@sender.test",
		"--rcpt", "user@example.org", path).Output()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range []string{
		"mime:\n",
		"  multipart/mixed\n",
		"    1 text/plain (detected text/plain) 30 bytes\n",
		"    2 application/pdf (detected application/vnd.microsoft.portable-executable) \"invoice.pdf\" 512 bytes, base64 [executable mismatch]\n",
		"    3 application/zip (detected application/zip) \"docs.zip\"",
		"      docs.zip/readme.txt (detected text/plain) 5 bytes\n",
		"final: reject at data (executable-attachment): 554 5.7.1 message refused: executable or script file: invoice.pdf",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}
