package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-message"

	"mxguard/checks/mime"
	"mxguard/held"
	"mxguard/internal/mailhdr"
	"mxguard/policy"
)

// HeldMail is the held-mail store as the console uses it: serve hands
// in the same release and deletion its control socket uses, so that a
// release from the console is delivered and audited as any other.
type HeldMail interface {
	// List returns the held messages f selects, newest first.
	List(f held.Filter) ([]held.Meta, error)
	// Get returns the metadata of the held message id.
	Get(id string) (held.Meta, error)
	// Content opens the message id as the backend would receive it.
	Content(id string) (*os.File, error)
	// Release delivers the message id to the backend on behalf of by,
	// and records it; force releases a message possibly delivered.
	Release(ctx context.Context, id, by string, force bool) (held.Meta, error)
	// Delete removes the message id on behalf of by, and records it.
	Delete(id, by string) (held.Meta, error)
}

// Bounds of the held pages: a page lists at most maxHeldRows messages
// (the filters find the others); a message page shows at most
// maxHeaderBytes of its header section and maxTextBytes of its text.
const (
	maxHeldRows    = 500
	maxHeaderBytes = 64 << 10
	maxTextBytes   = 64 << 10
)

// heldStates are the states the list's filter offers, as the store
// names them.
var heldStates = []string{string(held.StateHeld), string(held.StateReleased), string(held.StatePossiblyDelivered), string(held.StateReleasing)}

// heldQuery is the held list's filter form as the page shows it back.
type heldQuery struct {
	Since, Until, From, Rcpt, Rule, Session, State string
}

// filter reads the form into a held.Filter; the error names the field.
func (q heldQuery) filter(now time.Time) (held.Filter, error) {
	f := held.Filter{From: q.From, Rcpt: q.Rcpt, Rule: q.Rule, Session: strings.TrimSpace(q.Session)}
	var err error
	if q.Since != "" {
		if f.Since, err = policy.ParseVerdictTime(q.Since, now); err != nil {
			return f, fmt.Errorf("since: %w", err)
		}
	}
	if q.Until != "" {
		if f.Until, err = policy.ParseVerdictTime(q.Until, now); err != nil {
			return f, fmt.Errorf("until: %w", err)
		}
	}
	if q.State != "" {
		ok := false
		for _, s := range heldStates {
			ok = ok || s == q.State
		}
		if !ok {
			return f, fmt.Errorf("state: %q is none of %s", q.State, strings.Join(heldStates, ", "))
		}
		f.States = []held.State{held.State(q.State)}
	}
	return f, nil
}

// heldListData is the held list page.
type heldListData struct {
	Query    heldQuery
	States   []string
	Messages []held.Meta
	// More is how many more messages the filter selects than are shown.
	More int
}

func (s *Server) heldList(w http.ResponseWriter, r *http.Request, ss *session) {
	v := r.URL.Query()
	q := heldQuery{Since: v.Get("since"), Until: v.Get("until"), From: v.Get("from"), Rcpt: v.Get("rcpt"),
		Rule: v.Get("rule"), Session: v.Get("session"), State: v.Get("state")}
	data := &heldListData{Query: q, States: heldStates}
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Held mail", Data: data}
	f, err := q.filter(s.opts.Now())
	if err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusBadRequest, "held", d)
		return
	}
	list, err := s.opts.Held.List(f)
	if err != nil {
		s.opts.Logger.Error("console: listing held mail", "err", err)
		d.Error = "The held mail cannot be listed: see the log."
		s.render(w, http.StatusInternalServerError, "held", d)
		return
	}
	if len(list) > maxHeldRows {
		data.More = len(list) - maxHeldRows
		list = list[:maxHeldRows]
	}
	data.Messages = list
	s.render(w, http.StatusOK, "held", d)
}

// stateText is how the pages name a held message's state: a message
// whose last release the backend refused is still held, and says so.
func stateText(m held.Meta) string {
	switch m.State {
	case held.StatePossiblyDelivered:
		return "possibly delivered"
	case held.StateHeld:
		if a := m.LastAttempt(); a != nil && !a.Delivered {
			return "held (release refused)"
		}
	}
	return string(m.State)
}

// heldMsgData is a held message's page.
type heldMsgData struct {
	Meta held.Meta
	// Header is the header section, cut at maxHeaderBytes (HeaderCut).
	Header    string
	HeaderCut bool
	// Parts are the MIME parts as the mime check walks them, with its
	// bounds; TruncatedBy names the bound that ended the walk.
	Parts       []mime.Part
	TruncatedBy string
	Malformed   []string
	// Text is the first text/plain part, cut at maxTextBytes (TextCut).
	Text    string
	HasText bool
	TextCut bool
}

// heldID is the id in the request's path, or "" when it is not the form
// of a held id: nothing else comes near a file name.
func heldID(r *http.Request) string {
	id := r.PathValue("id")
	if !held.ValidID(id) {
		return ""
	}
	return id
}

// notHeld answers a request for a held message that is not there.
func (s *Server) notHeld(w http.ResponseWriter, ss *session) {
	s.render(w, http.StatusNotFound, "heldresult", pageData{User: ss.user, CSRF: ss.csrf, Title: "Held message",
		Error: "No held message has this id.", Data: &heldResultData{}})
}

func (s *Server) heldMessage(w http.ResponseWriter, r *http.Request, ss *session) {
	id := heldID(r)
	if id == "" {
		s.notHeld(w, ss)
		return
	}
	m, err := s.opts.Held.Get(id)
	if errors.Is(err, held.ErrNotFound) {
		s.notHeld(w, ss)
		return
	}
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Held message " + id}
	data := &heldMsgData{Meta: m}
	d.Data = data
	if err == nil {
		err = s.readHeld(r.Context(), id, data)
	}
	if err != nil {
		s.opts.Logger.Error("console: reading a held message", "held_id", id, "err", err)
		d.Error = "The held message cannot be read: see the log."
		s.render(w, http.StatusInternalServerError, "heldmsg", d)
		return
	}
	s.render(w, http.StatusOK, "heldmsg", d)
}

// readHeld reads what the page shows of the content of id: the header
// section, the parts, the first text. It never renders anything: the
// template escapes every octet of it as text.
func (s *Server) readHeld(ctx context.Context, id string, d *heldMsgData) error {
	f, err := s.opts.Held.Content(id)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, maxHeaderBytes+1)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("console: held %s: %w", id, err)
	}
	head = head[:n]
	end := mailhdr.Find(head).End
	if end > maxHeaderBytes {
		end, d.HeaderCut = maxHeaderBytes, true
	}
	d.Header = strings.ToValidUTF8(string(head[:end]), "\uFFFD")

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("console: held %s: %w", id, err)
	}
	res := mime.Parse(ctx, bufio.NewReader(f), s.opts.MIME)
	d.Parts, d.TruncatedBy, d.Malformed = res.Parts, res.TruncatedBy, res.Malformed

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("console: held %s: %w", id, err)
	}
	d.Text, d.HasText, d.TextCut = firstText(bufio.NewReader(f))
	return nil
}

// firstText returns the decoded first text/plain part of the message r
// that is not an attachment, cut at maxTextBytes. The walk is bounded as
// the mime check's is (parts and depth), so a hostile structure costs
// no more here than there.
func firstText(r io.Reader) (text string, found, cut bool) {
	e, err := message.Read(r)
	if e == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
		return "", false, false
	}
	parts, stop := 0, false
	// walk reports whether it found the text; stop ends the whole walk
	// at a bound.
	var walk func(e *message.Entity, depth int) bool
	walk = func(e *message.Entity, depth int) bool {
		parts++
		if parts > mime.DefaultMaxParts || depth > mime.DefaultMaxDepth {
			stop = true
			return false
		}
		if mr := e.MultipartReader(); mr != nil {
			for !stop {
				p, err := mr.NextPart()
				if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
					return false
				}
				if walk(p, depth+1) {
					return true
				}
			}
			return false
		}
		t, _, _ := e.Header.ContentType()
		disp, _, _ := e.Header.ContentDisposition()
		if (t != "" && t != "text/plain") || disp == "attachment" {
			return false
		}
		b, _ := io.ReadAll(io.LimitReader(e.Body, maxTextBytes+1))
		if len(b) > maxTextBytes {
			b, cut = b[:maxTextBytes], true
		}
		text, found = strings.ToValidUTF8(string(b), "\uFFFD"), true
		return true
	}
	walk(e, 0)
	return text, found, cut
}

// heldResultData is the page that answers a release or a deletion.
type heldResultData struct {
	Meta    held.Meta
	Outcome string
	// Reply is the backend's reply to a release.
	Reply   string
	Deleted bool
}

// heldFailure is the page of a release or deletion that the store
// refused: err says why, in the admin's words.
func (s *Server) heldFailure(w http.ResponseWriter, ss *session, m held.Meta, what string, err error) {
	status, msg := http.StatusInternalServerError, what+" failed: see the log."
	switch {
	case errors.Is(err, held.ErrNotFound):
		status, msg = http.StatusNotFound, "No held message has this id."
	case errors.Is(err, held.ErrReleased):
		status, msg = http.StatusConflict, "The message was released already: it is not sent twice."
	case errors.Is(err, held.ErrPossiblyDelivered):
		status, msg = http.StatusConflict, "The message was possibly delivered by a release that did not finish: tick \"release again\" to send it once more (the backend can drop the duplicate by its X-Mxguard-Release-Id)."
	case errors.Is(err, held.ErrBusy):
		status, msg = http.StatusConflict, "A release of this message is under way."
	}
	if status == http.StatusInternalServerError {
		s.opts.Logger.Error("console: "+what, "held_id", m.ID, "user", ss.user, "err", err)
	}
	s.render(w, status, "heldresult", pageData{User: ss.user, CSRF: ss.csrf, Title: what, Error: msg, Data: &heldResultData{Meta: m}})
}

func (s *Server) heldRelease(w http.ResponseWriter, r *http.Request, ss *session) {
	id := heldID(r)
	if id == "" {
		s.notHeld(w, ss)
		return
	}
	force := r.PostFormValue("force") == "1"
	// The delivery goes on if the admin's browser goes away: its outcome
	// is recorded either way.
	m, err := s.opts.Held.Release(context.WithoutCancel(r.Context()), id, "console:"+ss.user, force)
	if err != nil {
		if m.ID == "" {
			m.ID = id
		}
		s.heldFailure(w, ss, m, "Release", err)
		return
	}
	a := m.LastAttempt()
	d := &heldResultData{Meta: m, Reply: a.Reply}
	switch {
	case a.Delivered:
		d.Outcome = "Released: the backend took the message."
	case m.State == held.StatePossiblyDelivered:
		d.Outcome = "The backend's reply was lost: the message is possibly delivered."
	default:
		d.Outcome = "The backend refused the message: it stays held."
	}
	s.opts.Logger.Info("console: held message release", "user", ss.user, "held_id", id, "state", m.State, "forced", force)
	s.render(w, http.StatusOK, "heldresult", pageData{User: ss.user, CSRF: ss.csrf, Title: "Release of " + id, Data: d})
}

func (s *Server) heldDelete(w http.ResponseWriter, r *http.Request, ss *session) {
	id := heldID(r)
	if id == "" {
		s.notHeld(w, ss)
		return
	}
	m, err := s.opts.Held.Delete(id, "console:"+ss.user)
	if err != nil {
		m.ID = id
		s.heldFailure(w, ss, m, "Deletion", err)
		return
	}
	s.opts.Logger.Info("console: held message deleted", "user", ss.user, "held_id", id)
	s.render(w, http.StatusOK, "heldresult", pageData{User: ss.user, CSRF: ss.csrf, Title: "Deletion of " + id,
		Data: &heldResultData{Meta: m, Outcome: "Deleted.", Deleted: true}})
}
