package held

import (
	"slices"
	"strings"
	"time"
)

// State is where a held message stands.
type State string

// The states of a held message.
const (
	// StateHeld: kept, not delivered (also after a release the backend
	// refused: see Meta.Attempts).
	StateHeld State = "held"
	// StateReleasing: a release is under way. The intent is on disk
	// before the delivery starts, so that a crash during it is seen.
	StateReleasing State = "releasing"
	// StatePossiblyDelivered: a release was under way when mxguard
	// stopped. The backend may have taken the message or not: SMTP cannot
	// tell a 250 lost with the connection from no delivery. Released
	// again only when forced; the backend can drop the duplicate by its
	// X-Mxguard-Release-Id.
	StatePossiblyDelivered State = "possibly-delivered"
	// StateReleased: the backend answered 250 to a release. Kept until
	// it expires or is deleted, so that what happened can be shown.
	StateReleased State = "released"
)

// Meta is what is known about a held message besides its content: the
// JSON file beside it.
type Meta struct {
	// ID names the message in the store, on the command line and in the
	// X-Mxguard-Release-Id header of its release.
	ID string `json:"id"`
	// Session and Tx are the SMTP session and transaction that brought
	// it, as in the verdict log.
	Session string `json:"session"`
	Tx      string `json:"tx"`
	// Received is when it was held; it expires Keep after.
	Received time.Time `json:"received"`
	Client   Client    `json:"client"`
	// MailFrom is the reverse path without angle brackets ("" for <>),
	// with the MAIL parameters a release must give again.
	MailFrom string `json:"mail_from"`
	SMTPUTF8 bool   `json:"smtputf8,omitempty"`
	Body8Bit bool   `json:"body_8bitmime,omitempty"`
	// Rcpts are every recipient the transaction accepted.
	Rcpts     []string `json:"rcpts"`
	MessageID string   `json:"message_id,omitempty"`
	// Size is the size of the held file: the message as the backend
	// would have received it, our headers included.
	Size    int64   `json:"size"`
	Verdict Verdict `json:"verdict"`
	State   State   `json:"state"`
	// Attempts are the releases, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Client is the SMTP client that sent a held message.
type Client struct {
	IP    string `json:"ip"`
	Port  int    `json:"port"`
	HELO  string `json:"helo"`
	PTR   string `json:"ptr,omitempty"`
	ESMTP bool   `json:"esmtp"`
	TLS   bool   `json:"tls"`
}

// Verdict is why a message was held.
type Verdict struct {
	// Rule is the rule that held it; Rules are every rule that matched.
	Rule  string   `json:"rule"`
	Rules []string `json:"rules,omitempty"`
	Score float64  `json:"score"`
}

// Attempt is one release.
type Attempt struct {
	By      string    `json:"by"`
	Started time.Time `json:"started"`
	// Forced is set for a release of a message possibly delivered.
	Forced bool `json:"forced,omitempty"`
	// Ended is zero while the release is under way (or if mxguard stopped
	// during it); Delivered tells whether the backend answered 250, and
	// Reply is the backend's reply, or why there was none.
	Ended     time.Time `json:"ended,omitzero"`
	Delivered bool      `json:"delivered"`
	Reply     string    `json:"reply,omitempty"`
}

// LastAttempt is the latest release, or nil.
func (m *Meta) LastAttempt() *Attempt {
	if len(m.Attempts) == 0 {
		return nil
	}
	return &m.Attempts[len(m.Attempts)-1]
}

// Filter selects held messages; zero fields select all.
type Filter struct {
	// Since is inclusive, Until exclusive, on Received.
	Since, Until time.Time
	// From and Rcpt match a sender and any recipient containing them, in
	// any case ("<>" is the null sender).
	From, Rcpt string
	// Rule matches the rule that held the message or any that matched.
	Rule string
	// Session matches a session or transaction id by its start.
	Session string
	// States, when set, are the states to select.
	States []State
}

// Match reports whether m passes every filter.
func (f *Filter) Match(m *Meta) bool {
	if !f.Since.IsZero() && m.Received.Before(f.Since) || !f.Until.IsZero() && !m.Received.Before(f.Until) {
		return false
	}
	if f.From != "" {
		from := m.MailFrom
		if from == "" {
			from = "<>"
		}
		if !strings.Contains(strings.ToLower(from), strings.ToLower(f.From)) {
			return false
		}
	}
	if f.Rcpt != "" && !anyContains(m.Rcpts, strings.ToLower(f.Rcpt)) {
		return false
	}
	if f.Rule != "" && m.Verdict.Rule != f.Rule && !slices.Contains(m.Verdict.Rules, f.Rule) {
		return false
	}
	if f.Session != "" && !strings.HasPrefix(m.Session, f.Session) && !strings.HasPrefix(m.Tx, f.Session) {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, m.State) {
		return false
	}
	return true
}

func anyContains(list []string, lower string) bool {
	for _, s := range list {
		if strings.Contains(strings.ToLower(s), lower) {
			return true
		}
	}
	return false
}
