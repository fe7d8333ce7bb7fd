// Package mimetest builds the attachments and messages the MIME check's
// tests send: executables, ZIP archives (encrypted, nested, OOXML with
// macros), a minimal OLE compound file, and multipart messages holding
// them. Everything is built in memory, so the tests need no samples of
// real malware.
package mimetest

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// PE is the start of a Windows executable: a DOS header whose e_lfanew
// points at a PE signature and a COFF header. Enough for every type
// detector; nothing runs it.
func PE() []byte {
	b := make([]byte, 512)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x84:], 0x14c) // i386
	return b
}

// ELF is the start of a Linux executable.
func ELF() []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[16:], 2) // ET_EXEC
	return b
}

// File is one ZIP member.
type File struct {
	Name      string
	Data      []byte
	Encrypted bool
	// Stored keeps the member uncompressed.
	Stored bool
}

// Zip returns a ZIP archive of files. An Encrypted member has the
// encryption flag set (APPNOTE §4.4.4) and is stored as given: what a
// reader needs to tell it is encrypted is the flag.
func Zip(files ...File) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate}
		if f.Stored {
			h.Method = zip.Store
		}
		if f.Encrypted {
			h.Flags |= 0x1
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			panic(err)
		}
		w.Write(f.Data)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Docm returns a minimal macro-enabled Word document: an OOXML package
// with word/vbaProject.bin ([MS-OFFMACRO2]).
func Docm() []byte {
	return Zip(
		File{Name: "[Content_Types].xml", Data: []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>`)},
		File{Name: "word/document.xml", Data: []byte(`<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>`)},
		File{Name: "word/vbaProject.bin", Data: CFB("_VBA_PROJECT_CUR", "VBA")},
	)
}

// Docx returns the same document without macros.
func Docx() []byte {
	return Zip(
		File{Name: "[Content_Types].xml", Data: []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)},
		File{Name: "word/document.xml", Data: []byte(`<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>`)},
	)
}

// CFB returns a minimal OLE compound file ([MS-CFB], version 3, 512-byte
// sectors) whose root holds an empty WordDocument stream and the storages
// named, each inside the one before (CFB("Macros", "VBA") is a Word 97
// document with macros).
func CFB(storages ...string) []byte {
	const (
		endOfChain = 0xfffffffe
		freeSect   = 0xffffffff
		fatSect    = 0xfffffffd
		noStream   = 0xffffffff
	)
	le := binary.LittleEndian
	hdr := make([]byte, 512)
	copy(hdr, []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1})
	le.PutUint16(hdr[24:], 0x3e)
	le.PutUint16(hdr[26:], 3)
	le.PutUint16(hdr[28:], 0xfffe)
	le.PutUint16(hdr[30:], 9)
	le.PutUint16(hdr[32:], 6)
	le.PutUint32(hdr[44:], 1)          // FAT sectors
	le.PutUint32(hdr[48:], 1)          // first directory sector
	le.PutUint32(hdr[56:], 0x1000)     // mini stream cutoff
	le.PutUint32(hdr[60:], endOfChain) // no mini FAT
	le.PutUint32(hdr[68:], endOfChain) // no DIFAT sectors
	le.PutUint32(hdr[76:], 0)          // the FAT is sector 0
	for i := 1; i < 109; i++ {
		le.PutUint32(hdr[76+4*i:], freeSect)
	}
	fat := make([]byte, 512)
	for i := 0; i < 128; i++ {
		le.PutUint32(fat[4*i:], freeSect)
	}
	le.PutUint32(fat[0:], fatSect)
	le.PutUint32(fat[4:], endOfChain)
	dir := make([]byte, 512) // four entries
	entry := func(i int, name string, typ byte, left, right, child uint32) {
		e := dir[128*i : 128*(i+1)]
		u := utf16.Encode([]rune(name))
		for j, c := range u {
			le.PutUint16(e[2*j:], c)
		}
		le.PutUint16(e[64:], uint16(2*len(u)+2))
		e[66], e[67] = typ, 1
		le.PutUint32(e[68:], left)
		le.PutUint32(e[72:], right)
		le.PutUint32(e[76:], child)
		le.PutUint32(e[116:], endOfChain)
	}
	if len(storages) > 2 {
		panic("mimetest.CFB: at most two storages")
	}
	entry(0, "Root Entry", 5, noStream, noStream, 1)
	right := uint32(noStream)
	if len(storages) > 0 {
		right = 2
	}
	entry(1, "WordDocument", 2, noStream, right, noStream)
	for i, s := range storages {
		child := uint32(noStream)
		if i+1 < len(storages) {
			child = uint32(3 + i)
		}
		entry(2+i, s, 1, noStream, noStream, child)
	}
	return append(append(hdr, fat...), dir...)
}

// Part is one part of a message built by Message.
type Part struct {
	// Type is the Content-Type value, parameters included.
	Type string
	// Name, when set, is the file name (Content-Disposition: attachment;
	// filename="Name").
	Name string
	// Data is the content, sent in base64 unless Type is text/*.
	Data []byte
}

// Message returns a multipart/mixed message with a text part and parts,
// with CRLF line ends as it travels in SMTP.
func Message(subject string, parts ...Part) []byte {
	const boundary = "=_mxguard_test_boundary"
	var b strings.Builder
	fmt.Fprintf(&b, "From: <sender@example.net>\r\nTo: <user@example.org>\r\nSubject: %s\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%x@example.net>\r\nMIME-Version: 1.0\r\n", subject, len(subject)*7919+len(parts))
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\nThis is a MIME message.\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease find the file attached.\r\n", boundary)
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s\r\n", boundary, p.Type)
		if p.Name != "" {
			fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"%s\"\r\n", p.Name)
		}
		if strings.HasPrefix(p.Type, "text/") {
			fmt.Fprintf(&b, "\r\n%s\r\n", strings.ReplaceAll(strings.ReplaceAll(string(p.Data), "\r\n", "\n"), "\n", "\r\n"))
			continue
		}
		b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(p.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return []byte(b.String())
}
