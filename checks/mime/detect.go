package mime

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/gabriel-vasile/mimetype"
)

// kind is what the first bytes of a file say it is, where that matters
// for a verdict. Type detection names more types (mimetype); these few
// are tested by their magic numbers here, so that a verdict does not
// depend on a detection library's heuristics.
type kind int

const (
	kindOther kind = iota
	kindPE         // "MZ": DOS and Windows executables (PE/COFF)
	kindELF        // "\x7fELF"
	kindMachO      // Mach-O, thin or fat
	kindZIP        // "PK\x03\x04" (and an empty archive's "PK\x05\x06")
	kindOLE        // the OLE compound file signature ([MS-CFB] §2.2)
)

func (k kind) executable() bool { return k == kindPE || k == kindELF || k == kindMachO }

var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

// magic tests the magic numbers of the kinds.
func magic(b []byte) kind {
	switch {
	case bytes.HasPrefix(b, []byte("MZ")):
		return kindPE
	case bytes.HasPrefix(b, []byte("\x7fELF")):
		return kindELF
	case bytes.HasPrefix(b, []byte("PK\x03\x04")), bytes.HasPrefix(b, []byte("PK\x05\x06")):
		return kindZIP
	case bytes.HasPrefix(b, oleMagic):
		return kindOLE
	case len(b) >= 8:
		switch binary.BigEndian.Uint32(b) {
		case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe:
			return kindMachO
		case 0xcafebabe:
			// Also a Java class file's magic: a fat Mach-O holds few
			// architectures, a class file's version is >= 45.
			if binary.BigEndian.Uint32(b[4:]) < 20 {
				return kindMachO
			}
		}
	}
	return kindOther
}

// detect returns the media type b's first bytes show, without parameters.
func detect(b []byte, k kind) string {
	switch k {
	case kindPE:
		// mimetype wants a PE header; a bare DOS "MZ" runs too.
		return "application/vnd.microsoft.portable-executable"
	case kindMachO:
		return "application/x-mach-binary"
	}
	t := mimetype.Detect(b).String()
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return t
}

// mismatch reports a declared type that the bytes contradict: a PDF that
// is a PE, a ZIP that is an executable. Generic types (octet-stream, text
// detected as plain text) never mismatch, nor do related types (an OOXML
// document and a ZIP, two OLE formats, a type and its alias); a declared
// type the detector does not know mismatches only an executable.
func mismatch(declared, detected string) bool {
	if declared == "" || detected == "" || strings.HasPrefix(declared, "multipart/") || strings.HasPrefix(declared, "message/") {
		return false
	}
	if detected == "application/octet-stream" || detected == "text/plain" || declared == "application/octet-stream" {
		return false
	}
	// Before the lookups, which walk mimetype's whole tree: no text
	// type is an executable one, and text declared as another text type
	// is no mismatch (prose with commas is detected as text/csv).
	if strings.HasPrefix(declared, "text/") && strings.HasPrefix(detected, "text/") {
		return false
	}
	dt := mimetype.Lookup(detected)
	exec := detected == "application/vnd.microsoft.portable-executable" || detected == "application/x-mach-binary" ||
		(dt != nil && (dt.Is("application/x-elf") || dt.Is("application/x-executable") || dt.Is("application/x-sharedlib")))
	if dt != nil && dt.Is(declared) {
		return false
	}
	decl := mimetype.Lookup(declared)
	if decl == nil || dt == nil {
		return exec && !isExecType(declared)
	}
	if exec {
		return !isExecType(declared)
	}
	return !related(decl, dt)
}

// isExecType reports the declared types that say "executable" plainly.
func isExecType(t string) bool {
	switch t {
	case "application/x-msdownload", "application/x-dosexec", "application/x-msdos-program",
		"application/vnd.microsoft.portable-executable", "application/x-executable",
		"application/x-elf", "application/x-sharedlib", "application/x-mach-binary":
		return true
	}
	return false
}

// related reports whether a and b share an ancestor in the type tree
// other than its generic roots.
func related(a, b *mimetype.MIME) bool {
	anc := map[string]bool{}
	for m := a; m != nil; m = m.Parent() {
		anc[m.String()] = true
	}
	for m := b; m != nil; m = m.Parent() {
		s := m.String()
		if s == "application/octet-stream" || strings.HasPrefix(s, "text/plain") {
			continue
		}
		if anc[s] {
			return true
		}
	}
	return false
}
