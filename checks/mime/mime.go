// Package mime walks a message's MIME structure (RFC 2045, RFC 2046) and
// what its attachments hold, and reports what a rule may want to refuse:
// executables and scripts, Office files with macros, encrypted archives, a
// declared type that is not what the bytes are, double extensions, HTML
// with forms or javascript: URLs, and malformed structure.
//
// The walk streams: each part is decoded once, and only its first bytes
// (for type detection) and, for a ZIP archive or an OLE compound file, a
// bounded copy (their directories need random access) are kept. Bounds on
// parts, depth and decoded bytes end the walk with Truncated set, never
// with a silent pass.
package mime

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	message "github.com/emersion/go-message"
	// Registers the character sets of golang.org/x/text with go-message,
	// for RFC 2047 file names and for text parts in legacy charsets.
	_ "github.com/emersion/go-message/charset"

	"mxguard/internal/membudget"
)

// Options bound the walk; the zero value of a field is its default.
type Options struct {
	MaxParts          int
	MaxDepth          int
	MaxDecodedBytes   int64
	MaxArchiveMembers int
	// TempDir is where big archive copies go ("" is os.TempDir).
	TempDir string
	// Memory is the process-wide budget the in-memory archive copies
	// are taken from (nil: no limit): past it they go to TempDir.
	Memory *membudget.Budget
}

func (o Options) withDefaults() Options {
	if o.MaxParts <= 0 {
		o.MaxParts = DefaultMaxParts
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if o.MaxArchiveMembers <= 0 {
		o.MaxArchiveMembers = DefaultMaxArchiveMembers
	}
	return o
}

// Part is one MIME part or archive member, as rules and the verdict log
// see it.
type Part struct {
	Path     string `expr:"path" json:"path" doc:"where it is: \"\" the message, 1, 1.2 (MIME parts, as IMAP numbers them), 1.2/a.zip/b.exe (an archive member)"`
	Depth    int    `expr:"depth" json:"depth" doc:"nesting: 0 the message, 1 its parts, one more for each multipart, attached message or archive"`
	Type     string `expr:"type" json:"type,omitempty" doc:"declared media type, lower case (\"\" for an archive member)"`
	Detected string `expr:"detected" json:"detected,omitempty" doc:"media type detected from the first bytes (\"\" for a multipart)"`
	Filename string `expr:"filename" json:"filename,omitempty" doc:"file name (RFC 2231 and RFC 2047 decoded), or the member's name in its archive"`
	Size     int64  `expr:"size" json:"size" doc:"decoded size in bytes (for an archive member: its uncompressed size as the archive says)"`
	Encoding string `expr:"encoding" json:"encoding,omitempty" doc:"Content-Transfer-Encoding, lower case"`
	Member   bool   `expr:"member" json:"member,omitempty" doc:"an archive member"`
	Flags    string `expr:"flags" json:"flags,omitempty" doc:"what was found, space-separated: executable, macro, encrypted, mismatch, double_extension, html_form, html_javascript"`
}

// Result is what the walk found.
type Result struct {
	Parts            []Part
	Attachments      []string
	Extensions       []string
	DetectedTypes    []string
	Executable       []string
	MacroOffice      []string
	EncryptedArchive []string
	TypeMismatch     []string
	DoubleExtension  []string
	HTMLForm         bool
	HTMLJavascript   bool
	Malformed        []string
	Depth            int
	// TruncatedBy names the bound that ended the walk early ("" when
	// the whole message was seen).
	TruncatedBy string
	// Err is a failure of this machine that ended the walk (the archive
	// copy could not be written): the check is then a temperror.
	Err error
}

// errStop ends the walk once a bound is reached; TruncatedBy says which.
var errStop = errors.New("mime: bound reached")

// walker is one walk's state.
type walker struct {
	ctx     context.Context
	o       Options
	r       Result
	decoded int64
	parts   int
	// inDocument holds the indexes of the members of a document that is
	// a ZIP (OOXML), which are not attachments of their own. Kept here,
	// not in Part: every field of Part is a fact.
	inDocument map[int]bool
}

// Parse walks the message r. It never fails: what it cannot read is in
// Malformed, a bound reached is in TruncatedBy, and a cancelled ctx ends
// the walk with ctx.Err() in TruncatedBy.
func Parse(ctx context.Context, r io.Reader, o Options) Result {
	w := &walker{ctx: ctx, o: o.withDefaults()}
	if err := w.message(&ctxReader{ctx: ctx, r: r}, "", 0); err != nil && !errors.Is(err, errStop) {
		w.malformed("", err.Error())
	}
	w.finish()
	return w.r
}

// stop records the bound that ends the walk.
func (w *walker) stop(bound string) error {
	if w.r.TruncatedBy == "" {
		w.r.TruncatedBy = bound
	}
	return errStop
}

func (w *walker) malformed(path, reason string) {
	if len(w.r.Malformed) >= 20 {
		// A broken message can be broken everywhere; the first few say it.
		return
	}
	where := "message"
	if path != "" {
		where = "part " + path
	}
	w.r.Malformed = append(w.r.Malformed, where+": "+reason)
}

// message reads one message (the whole one, or an attached message/rfc822)
// whose path is path.
func (w *walker) message(r io.Reader, path string, depth int) error {
	e, err := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	if err != nil && e == nil {
		w.malformed(path, "header: "+err.Error())
		return nil
	}
	if err != nil && message.IsUnknownEncoding(err) {
		w.malformed(path, err.Error())
	}
	return w.entity(e, path, depth)
}

// entity walks one entity: a multipart's parts, an attached message, or a
// leaf's content.
func (w *walker) entity(e *message.Entity, path string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return w.stop(err.Error())
	}
	w.parts++
	if w.parts > w.o.MaxParts {
		return w.stop("max_parts")
	}
	w.r.Depth = max(w.r.Depth, depth)
	p := Part{Path: path, Depth: depth}
	p.Type, p.Filename = w.contentInfo(e, path)
	p.Encoding = strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding")))
	idx := len(w.r.Parts)
	w.r.Parts = append(w.r.Parts, p)

	if mr := e.MultipartReader(); mr != nil {
		if depth+1 > w.o.MaxDepth {
			return w.stop("max_depth")
		}
		for i := 1; ; i++ {
			child, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if child != nil && (message.IsUnknownEncoding(err) || message.IsUnknownCharset(err)) {
				// The part is read as it is: its bytes are still there.
				if message.IsUnknownEncoding(err) {
					w.malformed(childPath(path, i), err.Error())
				}
				err = nil
			}
			if err != nil {
				if cerr := w.ctx.Err(); cerr != nil {
					return w.stop(cerr.Error())
				}
				if errors.Is(err, io.ErrUnexpectedEOF) || strings.HasSuffix(err.Error(), "EOF") {
					w.malformed(path, "multipart without its boundary, or without the closing one")
				} else {
					w.malformed(path, err.Error())
				}
				return nil
			}
			if child == nil {
				return nil
			}
			if err := w.entity(child, childPath(path, i), depth+1); err != nil {
				return err
			}
		}
	}
	if p.Type == "message/rfc822" || p.Type == "message/global" {
		if depth+1 > w.o.MaxDepth {
			return w.stop("max_depth")
		}
		cr := &countReader{w: w, r: e.Body}
		err := w.message(cr, childPath(path, 1), depth+1)
		// What the inner message left unread is still this part's.
		if err == nil {
			_, err = io.Copy(io.Discard, cr)
			if err != nil && !errors.Is(err, errStop) {
				w.malformed(path, readError(err))
				err = nil
			}
		}
		w.r.Parts[idx].Size = cr.n
		return err
	}
	return w.leaf(e.Body, idx, depth)
}

// contentInfo returns the entity's declared media type and file name, and
// notes a header it could read only leniently.
func (w *walker) contentInfo(e *message.Entity, path string) (string, string) {
	typ, params, err := e.Header.ContentType()
	if err != nil && e.Header.Has("Content-Type") {
		w.malformed(path, "Content-Type: "+err.Error())
		typ = lenientType(e.Header.Get("Content-Type"))
	}
	typ = strings.ToLower(typ)
	if typ == "" {
		// RFC 2045 §5.2; a multipart/digest's parts default to
		// message/rfc822, which a walker need not honour to stay safe:
		// the part is still read and its bytes detected.
		typ = "text/plain"
	}
	_, dparams, derr := e.Header.ContentDisposition()
	if derr != nil && e.Header.Has("Content-Disposition") {
		w.malformed(path, "Content-Disposition: "+derr.Error())
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name == "" && derr != nil {
		// A mail reader that parses leniently still shows this name: so
		// must we, or a broken header hides an attachment's name.
		name = lenientParam(e.Header.Get("Content-Disposition"), "filename")
	}
	if name == "" && err != nil {
		name = lenientParam(e.Header.Get("Content-Type"), "name")
	}
	return typ, name
}

// childPath numbers parts as IMAP does (RFC 3501 §6.4.5).
func childPath(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

// readError says what a failed read of a part's body means.
func readError(err error) string {
	var b64 base64.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the message ends inside the part (no closing boundary)"
	case errors.As(err, &b64):
		return "bad base64: " + err.Error()
	}
	return err.Error()
}

// finish derives the summary facts from the parts.
func (w *walker) finish() {
	exts := map[string]bool{}
	types := map[string]bool{}
	for i, p := range w.r.Parts {
		if p.Filename != "" && !w.inDocument[i] {
			name := displayName(p)
			w.r.Attachments = append(w.r.Attachments, name)
			if ext := extension(p.Filename); ext != "" {
				exts[ext] = true
			}
		}
		if p.Detected != "" {
			types[p.Detected] = true
		}
	}
	w.r.Extensions = sortedKeys(exts)
	w.r.DetectedTypes = sortedKeys(types)
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// displayName names a part in facts and replies: its file name, with the
// archive it is in; or its place when it has none.
func displayName(p Part) string {
	if p.Member {
		return p.Path
	}
	if p.Filename != "" {
		return p.Filename
	}
	if p.Path == "" {
		return "the message body"
	}
	return "part " + p.Path
}

// flag marks the part at idx and adds it to list.
func (w *walker) flag(idx int, f string, list *[]string) {
	p := &w.r.Parts[idx]
	if p.Flags != "" {
		if slices.Contains(strings.Fields(p.Flags), f) {
			return
		}
		p.Flags += " "
	}
	p.Flags += f
	if list != nil {
		*list = append(*list, displayName(*p))
	}
}

// ctxReader ends reads when ctx is done, so a check past its deadline
// stops reading the spool.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("mime: %w", err)
	}
	return c.r.Read(p)
}

// countReader counts decoded bytes against the message's budget.
type countReader struct {
	w *walker
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.w.decoded >= c.w.o.MaxDecodedBytes {
		return 0, c.w.stop("max_decoded_bytes")
	}
	if rest := c.w.o.MaxDecodedBytes - c.w.decoded; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.w.decoded += int64(n)
	return n, err
}
