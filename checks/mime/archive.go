package mime

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/richardlehane/mscfb"

	"mxguard/internal/membudget"
)

// memoryCopyBytes is the largest archive copy kept in memory; a bigger
// one goes to a temporary file, so that memory stays bounded whatever
// the attachment's size.
const memoryCopyBytes = 1 << 20

// localError is a failure of this machine (the temporary folder is full
// or gone), not of the message: the walk ends and the check is a
// temperror, so the message is neither refused nor passed for it.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// spill is a bounded copy of one file for random access: in memory while
// small and while the process-wide memory budget allows, then in a
// temporary file removed by Close.
type spill struct {
	dir      string
	budget   *membudget.Budget
	reserved int64
	mem      []byte
	f        *os.File
	n        int64
}

func newSpill(dir string, budget *membudget.Budget) *spill { return &spill{dir: dir, budget: budget} }

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= memoryCopyBytes {
		if grow := int64(len(s.mem)+len(p)) - s.reserved; grow <= 0 || s.budget.Reserve(grow) {
			s.reserved += max(grow, 0)
			s.mem = append(s.mem, p...)
			s.n += int64(len(p))
			return len(p), nil
		}
		// The budget is spent by other messages: the disk, then.
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "mxguard-mime-*")
		if err != nil {
			return 0, &localError{fmt.Errorf("mime: archive copy: %w", err)}
		}
		s.f = f
		if _, err := f.Write(s.mem); err != nil {
			return 0, &localError{fmt.Errorf("mime: archive copy: %w", err)}
		}
		s.mem = nil
		s.budget.Release(s.reserved)
		s.reserved = 0
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, &localError{fmt.Errorf("mime: archive copy: %w", err)}
	}
	return n, nil
}

func (s *spill) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	return bytes.NewReader(s.mem).ReadAt(p, off)
}

// Close removes the copy.
func (s *spill) Close() error {
	s.budget.Release(s.reserved)
	s.reserved = 0
	if s.f == nil {
		return nil
	}
	s.f.Close()
	return os.Remove(s.f.Name())
}

// zipArchive walks the members of the ZIP in sp, the content of the part
// at idx: each member's name and first bytes, and those that are archives
// or Office files in turn. An OOXML document is a ZIP: its macros are the
// member vbaProject.bin ([MS-OFFMACRO2]).
func (w *walker) zipArchive(idx int, sp *spill, depth int) error {
	zr, err := zip.NewReader(sp, sp.n)
	if err != nil {
		w.malformed(w.r.Parts[idx].Path, "zip: "+err.Error())
		return nil
	}
	parent := displayName(w.r.Parts[idx])
	// The members of a document that is a ZIP (OOXML, OpenDocument) are
	// its inner workings, not attachments; they are walked all the same.
	inner := w.inDocument[idx] || w.r.Parts[idx].Detected != "application/zip"
	encrypted, macro := false, false
	for i, f := range zr.File {
		if i >= w.o.MaxArchiveMembers {
			return w.stop("max_archive_members")
		}
		if err := w.ctx.Err(); err != nil {
			return w.stop(err.Error())
		}
		w.parts++
		if w.parts > w.o.MaxParts {
			return w.stop("max_parts")
		}
		if strings.EqualFold(path.Base(f.Name), "vbaProject.bin") {
			macro = true
		}
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		midx := len(w.r.Parts)
		w.r.Parts = append(w.r.Parts, Part{Path: parent + "/" + f.Name, Depth: depth + 1, Filename: f.Name,
			Size: int64(f.UncompressedSize64), Member: true})
		if inner {
			if w.inDocument == nil {
				w.inDocument = map[int]bool{}
			}
			w.inDocument[midx] = true
		}
		w.r.Depth = max(w.r.Depth, depth+1)
		// APPNOTE.TXT §4.4.4: bit 0 of the general purpose flags marks
		// an encrypted member (traditional and AES encryption alike).
		if f.Flags&0x1 != 0 {
			encrypted = true
			w.flag(midx, "encrypted", nil)
			w.nameFlags(midx)
			continue
		}
		if err := w.member(midx, f, depth+1); err != nil {
			return err
		}
		w.nameFlags(midx)
	}
	if encrypted {
		w.flag(idx, "encrypted", &w.r.EncryptedArchive)
	}
	if macro {
		w.flag(idx, "macro", &w.r.MacroOffice)
	}
	return nil
}

// member reads one ZIP member: its first bytes, and all of it when it is
// itself an archive, within the decoded-bytes budget.
func (w *walker) member(idx int, f *zip.File, depth int) error {
	rc, err := f.Open()
	if err != nil {
		w.malformed(w.r.Parts[idx].Path, "zip member: "+err.Error())
		return nil
	}
	defer rc.Close()
	cr := &countReader{w: w, r: rc}
	head, err := readHead(cr, nil)
	if err == nil {
		err = w.content(idx, head, cr, depth, false)
	} else {
		w.content(idx, head, eofReader{}, depth, false)
	}
	if err != nil {
		if errors.Is(err, errStop) {
			return err
		}
		if le := (*localError)(nil); errors.As(err, &le) {
			w.r.Err = le
			return errStop
		}
		if cerr := w.ctx.Err(); cerr != nil {
			return w.stop(cerr.Error())
		}
		w.malformed(w.r.Parts[idx].Path, "zip member: "+err.Error())
	}
	return nil
}

// maxOLEEntries bounds the directory entries read from one compound file.
const maxOLEEntries = 10000

// ole reads the directory of the OLE compound file in sp ([MS-CFB] §2.6)
// for the storages that hold VBA macros: _VBA_PROJECT_CUR in Excel, Macros
// in Word 97-2003, and _VBA_PROJECT under either ([MS-OVBA] §2.2); and for
// EncryptedPackage, an encrypted OOXML document ([MS-OFFCRYPTO] §2.3.4),
// whose content cannot be inspected any more than an encrypted archive's.
func (w *walker) ole(idx int, sp *spill) {
	p := w.r.Parts[idx].Path
	defer func() {
		// The compound file reader is a library reading hostile input: a
		// panic in it is a malformed file, not a failed check.
		if r := recover(); r != nil {
			w.malformed(p, fmt.Sprintf("OLE compound file: %v", r))
		}
	}()
	doc, err := mscfb.New(io.NewSectionReader(sp, 0, sp.n))
	if err != nil {
		w.malformed(p, "OLE compound file: "+err.Error())
		return
	}
	macro, encrypted := false, false
	for i := 0; i < maxOLEEntries; i++ {
		e, err := doc.Next()
		if err != nil {
			if err != io.EOF {
				w.malformed(p, "OLE compound file: "+err.Error())
			}
			break
		}
		switch {
		case strings.HasPrefix(strings.ToUpper(e.Name), "_VBA_PROJECT"), e.Name == "Macros", e.Name == "VBA":
			macro = true
		case e.Name == "EncryptedPackage":
			encrypted = true
		}
	}
	// An OOXML document's vbaProject.bin is its macros: the document
	// is named (zipArchive), not the member.
	if macro && !(w.r.Parts[idx].Member && strings.EqualFold(path.Base(w.r.Parts[idx].Filename), "vbaProject.bin")) {
		w.flag(idx, "macro", &w.r.MacroOffice)
	}
	if encrypted {
		w.flag(idx, "encrypted", &w.r.EncryptedArchive)
	}
}
