package mime_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/mime"
	"mxguard/checks/mime/mimetest"
)

// FuzzParse: any input gives a result and no panic, within the bounds:
// never more parts than max_parts plus the one that stopped the walk,
// never deeper than max_depth, and every part path is unique.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/malformed/*.eml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mimetest.Message("docm", mimetest.Part{Type: "application/octet-stream", Name: "a.docm", Data: mimetest.Docm()}))
	f.Add(mimetest.Message("doc", mimetest.Part{Type: "application/msword", Name: "a.doc", Data: mimetest.CFB("Macros", "VBA")}))
	f.Add(mimetest.Message("zip", mimetest.Part{Type: "application/zip", Name: "a.zip",
		Data: mimetest.Zip(mimetest.File{Name: "b.zip", Data: mimetest.Zip(mimetest.File{Name: "c.exe", Data: mimetest.PE()})},
			mimetest.File{Name: "e", Data: []byte("x"), Encrypted: true})}))
	f.Add(mimetest.Message("html", mimetest.Part{Type: "text/html", Data: []byte("<form><a href='javascript:x'>")}))
	dir := f.TempDir()
	o := mime.Options{MaxParts: 50, MaxDepth: 6, MaxDecodedBytes: 4 << 20, MaxArchiveMembers: 20, TempDir: dir}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := mime.Parse(context.Background(), bytes.NewReader(b), o)
		if len(r.Parts) > o.MaxParts+1 {
			t.Fatalf("%d parts past max_parts %d", len(r.Parts), o.MaxParts)
		}
		if r.Depth > o.MaxDepth {
			t.Fatalf("depth %d past max_depth %d", r.Depth, o.MaxDepth)
		}
		if r.TruncatedBy != "" && !strings.HasPrefix(r.TruncatedBy, "max_") {
			t.Fatalf("truncated by %q", r.TruncatedBy)
		}
		_ = r.CheckResult()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("archive copies left behind: %v", left)
		}
	})
}

// FuzzAttachment mutates an attachment's bytes rather than the message's
// text, so that the archive and OLE compound file readers (archive/zip,
// mscfb) see hostile input directly: no panic escapes, nothing is left
// in the temporary folder, and the bounds hold.
func FuzzAttachment(f *testing.F) {
	f.Add(mimetest.Docm())
	f.Add(mimetest.Docx())
	f.Add(mimetest.CFB("Macros", "VBA"))
	f.Add(mimetest.CFB("EncryptedPackage"))
	f.Add(mimetest.Zip(mimetest.File{Name: "in.zip", Data: mimetest.Zip(mimetest.File{Name: "a.exe", Data: mimetest.PE()})},
		mimetest.File{Name: "e.pdf", Data: []byte("x"), Encrypted: true}))
	f.Add(mimetest.PE())
	dir := f.TempDir()
	o := mime.Options{MaxParts: 50, MaxDepth: 6, MaxDecodedBytes: 4 << 20, MaxArchiveMembers: 20, TempDir: dir}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg := mimetest.Message("fuzz", mimetest.Part{Type: "application/octet-stream", Name: "a.bin", Data: b})
		r := mime.Parse(context.Background(), bytes.NewReader(msg), o)
		if len(r.Parts) < 3 || r.Parts[2].Size != int64(len(b)) {
			t.Fatalf("the attachment was not read whole: %+v", r.Parts)
		}
		if len(r.Parts) > o.MaxParts+1 || r.Depth > o.MaxDepth {
			t.Fatalf("%d parts, depth %d: past the bounds", len(r.Parts), r.Depth)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("archive copies left behind: %v", left)
		}
	})
}
