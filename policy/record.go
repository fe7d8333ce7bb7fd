package policy

import "time"

// Record is one line of the verdict log: everything an admin needs to
// answer "why was this message refused?", and everything replay needs to
// decide again without any DNS. One Record is written per transaction
// (MAIL to the end of DATA, RSET or QUIT) and one per connection refused
// before a transaction began.
type Record struct {
	Time      time.Time `json:"time"`
	Session   string    `json:"session"`
	Tx        string    `json:"tx,omitempty"`
	ClientIP  string    `json:"client_ip"`
	ClientPTR string    `json:"client_ptr"`
	HELO      string    `json:"helo"`
	TLS       *TLSInfo  `json:"tls"`
	MailFrom  string    `json:"mail_from"`
	// Rcpts are the recipients accepted at RCPT; Refused are those refused
	// there, with the reply each got.
	Rcpts     []string               `json:"rcpts"`
	Refused   []RcptRefusal          `json:"refused_rcpts,omitempty"`
	MessageID string                 `json:"message_id"`
	Size      int64                  `json:"size"`
	Checks    map[string]CheckRecord `json:"checks"`
	Rules     []RuleMatch            `json:"rules"`
	Score     float64                `json:"score"`
	// Stage is where the final action was taken; Action is that action
	// ("accept", "reject", "tempfail", "quarantine", "tag", "hold", or
	// "abandoned" when the client left before the end of DATA). A held
	// message gets later lines of its own: "release" and "delete" (see
	// HeldID and By).
	Stage  string `json:"stage"`
	Action string `json:"action"`
	// Reason is what decided: the deciding rule's name, or "relay",
	// "score", "size", "rule-error", "spool" for decisions no rule made.
	Reason       string `json:"reason,omitempty"`
	Reply        string `json:"reply"`
	BackendReply string `json:"backend_reply"`
	// Facts are the facts at the end of the transaction, the input of
	// "mxguard rules replay".
	Facts *Facts `json:"facts,omitempty"`
	// HeldID is the id of the message in the held-mail store, on the
	// line of the transaction a rule held and on the lines of its
	// release and deletion.
	HeldID string `json:"held_id,omitempty"`
	// By is who released or deleted a held message (an admin's name,
	// or "expiry").
	By string `json:"by,omitempty"`
}

// The actions of the lines written about a held message after the
// transaction that held it. No rule decides them: replay leaves them as
// they are.
const (
	ActionRelease = "release"
	ActionDelete  = "delete"
)

// RcptRefusal is a recipient refused at RCPT.
type RcptRefusal struct {
	Rcpt  string `json:"rcpt"`
	Reply string `json:"reply"`
	Rule  string `json:"rule,omitempty"`
}

// CheckRecord is one check's outcome as logged.
type CheckRecord struct {
	Result     string  `json:"result"`
	Detail     string  `json:"detail,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// Facts are a per-recipient check's facts about that recipient
	// (entries "NAME <addr>"), from which replay decides again; nil for
	// the others, whose facts are the line's facts.
	Facts any `json:"facts,omitempty"`
}

// RuleMatch is one rule that matched, enforced or in monitor mode.
type RuleMatch struct {
	Name   string  `json:"name"`
	Stage  string  `json:"stage"`
	Action string  `json:"action"`
	Mode   string  `json:"mode"`
	Score  float64 `json:"score,omitempty"`
	Rcpt   string  `json:"rcpt,omitempty"`
}
