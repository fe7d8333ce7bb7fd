package mime

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
)

// headBytes is how much of a file type detection reads: what mimetype
// reads by default, and enough for every magic number we test.
const headBytes = 3072

// leaf reads a MIME leaf part to its end: its first bytes for detection,
// the rest through the HTML scanner or into a bounded copy when it is an
// archive, and its size.
func (w *walker) leaf(body io.Reader, idx, depth int) error {
	cr := &countReader{w: w, r: body}
	hp := heads.Get().(*[]byte)
	defer heads.Put(hp)
	head, err := readHead(cr, *hp)
	if err == nil {
		err = w.content(idx, head, cr, depth, true)
	} else {
		// What could be decoded before the damage is still looked at: a
		// reader that is lenient about the damage shows it.
		w.content(idx, head, eofReader{}, depth, true)
	}
	w.r.Parts[idx].Size = cr.n
	w.nameFlags(idx)
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
		w.malformed(w.r.Parts[idx].Path, readError(err))
	}
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// heads recycle the buffers file heads are read into: a head is read,
// looked at and copied where it must stay before its leaf is done.
var heads = sync.Pool{New: func() any { b := make([]byte, headBytes); return &b }}

// readHead reads up to len(head) octets into head (headBytes of them when
// head is nil); a shorter file is no error.
func readHead(r io.Reader, head []byte) ([]byte, error) {
	if head == nil {
		head = make([]byte, headBytes)
	}
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return head[:n], err
}

// content looks at one file: head is its start, rest what follows. drain
// says whether rest must be read to its end (a MIME part, whose end is
// where the next one starts) or may be left (an archive member).
func (w *walker) content(idx int, head []byte, rest io.Reader, depth int, drain bool) error {
	p := &w.r.Parts[idx]
	kind := magic(head)
	p.Detected = detect(head, kind)
	if kind.executable() {
		w.flag(idx, "executable", &w.r.Executable)
	}
	html := p.Detected == "text/html" || p.Type == "text/html" || hasExt(p.Filename, htmlExts)
	switch {
	case (kind == kindZIP || kind == kindOLE) && depth+1 <= w.o.MaxDepth:
		sp := newSpill(w.o.TempDir, w.o.Memory)
		defer sp.Close()
		if _, err := sp.Write(head); err != nil {
			return err
		}
		if _, err := io.Copy(sp, rest); err != nil {
			return err
		}
		if kind == kindZIP {
			return w.zipArchive(idx, sp, depth)
		}
		w.ole(idx, sp)
		return nil
	case kind == kindZIP || kind == kindOLE:
		return w.stop("max_depth")
	case html:
		s := &htmlScan{}
		s.Write(head)
		var err error
		if drain {
			_, err = io.Copy(s, rest)
		} else {
			_, err = io.Copy(s, io.LimitReader(rest, 1<<20))
		}
		if s.form {
			w.flag(idx, "html_form", nil)
			w.r.HTMLForm = true
		}
		if s.javascript {
			w.flag(idx, "html_javascript", nil)
			w.r.HTMLJavascript = true
		}
		return err
	case drain:
		_, err := io.Copy(io.Discard, rest)
		return err
	}
	return nil
}

// nameFlags flags the part at idx for what its name and declared type
// say, once its content has been seen.
func (w *walker) nameFlags(idx int) {
	p := w.r.Parts[idx]
	if hasExt(p.Filename, execExts) {
		w.flag(idx, "executable", &w.r.Executable)
	}
	if doubleExtension(p.Filename) {
		w.flag(idx, "double_extension", &w.r.DoubleExtension)
	}
	if !p.Member && mismatch(p.Type, p.Detected) {
		w.flag(idx, "mismatch", &w.r.TypeMismatch)
	}
}

var htmlExts = []string{"htm", "html", "shtml", "xhtml"}

// htmlScan finds "<form" and "javascript:" in HTML, case-insensitively
// and across writes. Entities and blanks inside the scheme
// ("java&#115;cript:", "java\tscript:") are what browsers undo, so the
// scanner undoes the common ones too: tab, newline and carriage return
// are dropped (the URL spec strips them), and "&colon;"/"&#58;" read ":".
type htmlScan struct {
	tail             []byte
	form, javascript bool
}

func (s *htmlScan) Write(p []byte) (int, error) {
	if s.form && s.javascript {
		return len(p), nil
	}
	// Keep a tail so a word split across writes is found.
	buf := make([]byte, 0, len(s.tail)+len(p))
	buf = append(buf, s.tail...)
	for _, c := range p {
		switch {
		case c == '\t' || c == '\n' || c == '\r':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	norm := bytes.ReplaceAll(bytes.ReplaceAll(buf, []byte("&colon;"), []byte(":")), []byte("&#58;"), []byte(":"))
	if bytes.Contains(norm, []byte("<form")) {
		s.form = true
	}
	if bytes.Contains(norm, []byte("javascript:")) {
		s.javascript = true
	}
	const keep = 16
	if len(buf) > keep {
		buf = buf[len(buf)-keep:]
	}
	s.tail = append(s.tail[:0], buf...)
	return len(p), nil
}

// extension is a file name's last extension, lower case ("" for none).
func extension(name string) string {
	name = strings.TrimRight(name, " .")
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	return strings.ToLower(name[i+1:])
}

func hasExt(name string, exts []string) bool {
	ext := extension(name)
	for _, e := range exts {
		if ext == e {
			return true
		}
	}
	return false
}

// execExts are the extensions Windows (and Java) runs on a double click,
// or that run script hosts: what mail filters commonly refuse outright.
var execExts = []string{
	"exe", "dll", "scr", "com", "pif", "cpl", "msi", "msp", "mst", "msc", "sys", "drv",
	"bat", "cmd", "ps1", "psm1", "psd1", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc",
	"hta", "lnk", "scf", "inf", "reg", "jar", "appx", "appxbundle", "msix", "application",
	"gadget", "vb", "sct", "shb", "url", "chm",
}

// decoyExts are what a double extension pretends to be.
var decoyExts = []string{
	"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "rtf", "txt", "csv", "odt", "ods",
	"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "zip", "rar", "7z", "htm", "html",
	"mp3", "mp4", "wav", "avi", "mov", "eml", "msg", "xml", "json",
}

// doubleExtension reports a name that shows a document's extension before
// an executable one ("invoice.pdf.exe", "scan.pdf   .exe"), or hides its
// end with a right-to-left override (U+202E), which displays
// "invoice\u202Efdp.exe" as "invoiceexe.pdf".
func doubleExtension(name string) bool {
	if strings.ContainsAny(name, "\u202e\u202d\u2066\u2067\u2068") {
		return true
	}
	if !hasExt(name, execExts) {
		return false
	}
	name = strings.TrimRight(name, " .")
	inner := strings.TrimRight(name[:strings.LastIndexByte(name, '.')], " .")
	return hasExt(inner, decoyExts)
}
