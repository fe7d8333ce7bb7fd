// Package check is the contract between the engine (mxguard/policy) and
// the checks under checks/.
//
// A check is a folder under checks/ holding its work, its facts (the type
// rules read, with the tags that name and document each fact), its config
// section, and a Define method on the facts type that returns its Def. It
// is registered by one line: a field of that facts type in the engine's
// registry (policy.Found). The engine derives everything else from that
// field: the check's name in rules and in the verdict log, the facts
// table of docs/rules.md, the stage from which rules may read it, and
// when it runs.
//
// A check never writes the transaction. It gets a read-only View and a
// context that carries its deadline, and returns a Result; the engine
// stores the result on the session's goroutine, and only when it came in
// time. That is what lets a check outlive its deadline without racing the
// session that has moved on.
package check

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"mxguard/checks/resolver"
	"mxguard/internal/mailhdr"
	"mxguard/internal/membudget"
	"mxguard/internal/state"
)

// Stage is the point of an SMTP transaction at which a decision is taken.
// Early stages reject early: a connect-stage refusal costs no DNS walk and
// no message transfer.
type Stage int

// The stages, in the order a session reaches them.
const (
	Connect Stage = iota + 1
	HELO
	Mail
	Rcpt
	Data
)

var stageNames = [...]string{Connect: "connect", HELO: "helo", Mail: "mail", Rcpt: "rcpt", Data: "data"}

// String returns the name used in rules files and logs.
func (s Stage) String() string {
	if s >= Connect && s <= Data {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// DefaultTimeout bounds each check when the configuration does not
// (limits.check_timeout): long enough for a DNS walk with retries, short
// enough that a client is answered well within its own timeouts.
const DefaultTimeout = 10 * time.Second

// Results every check can give (RFC 7208 §8 and RFC 8601 use the same
// words).
const (
	Temperror = "temperror"
	Permerror = "permerror"
)

// Result is what a check returns.
type Result struct {
	// Result is the check's result word (pass, fail, temperror, …), and
	// Detail what it found, for people; both go to checks.NAME in rules
	// and in the verdict log.
	Result, Detail string
	// Facts are the check's facts: a value of the type its registry
	// field has (nil leaves them empty).
	Facts any
}

// Errorf is a result with no facts, such as a temperror with its cause.
func Errorf(result, format string, args ...any) Result {
	return Result{Result: result, Detail: fmt.Sprintf(format, args...)}
}

// View is what a check may read of the transaction it decides on. It is
// read-only: see the package comment.
type View interface {
	// Client is the client's address (from the PROXY header when a load
	// balancer stands in front).
	Client() netip.Addr
	// HELO is the name the client gave in HELO/EHLO.
	HELO() string
	// MailFrom is the reverse path without angle brackets ("" for <>).
	MailFrom() string
	// Rcpt is the recipient being decided, for a per-recipient check
	// (Def.PerRcpt); "" for the others.
	Rcpt() string
	// Rcpts are the recipients accepted so far: all of them at data.
	// Callers must not modify the result.
	Rcpts() []string
	// ClientPTR is the client's verified reverse DNS name, "" when it is
	// not known (the rdns check has not run, or found none).
	ClientPTR() string
	// TxID is the transaction's id (the session id and a sequence
	// number), as the verdict log and the Received header give it.
	TxID() string
	// SMTPUTF8 reports whether the client asked for SMTPUTF8 at MAIL.
	SMTPUTF8() bool
	// MessageID is the Message-ID without angle brackets ("" before data).
	MessageID() string
	// LocalDomains are the domains the site accepts mail for.
	LocalDomains() []string
	// Header is the message's header section (see mailhdr), and
	// HeaderSplit where it ends; data stage only.
	Header() []byte
	HeaderSplit() (mailhdr.Split, error)
	// From is the domain of the one From address, or why there is not
	// exactly one; parsed once by the engine for every check.
	From() (domain string, err error)
	// Content reads the message as the backend receives it (data stage).
	Content() (io.Reader, error)
	// Size is the message's size in octets as received, line endings
	// made canonical (0 before data).
	Size() int64
	// Facts are the facts of the named check, which must be one of the
	// check's Deps; nil when it gave none.
	Facts(name string) any
	// Tap is what the check's own Tap collected while the message
	// arrived; nil when it had none.
	Tap() Tap
}

// Tap sees the message while it arrives, so that a check can start its
// work before the transfer ends (DKIM looks its keys up).
type Tap interface {
	io.Writer
	// Stop ends the tap's work and frees what it holds; the engine calls
	// it when the transaction ends.
	Stop()
}

// Env is what checks are built from, once per configuration.
type Env struct {
	// Resolver answers the checks' DNS queries; nil means no check that
	// needs DNS runs (Define returns a Def without Run).
	Resolver *resolver.Resolver
	// Memory is the process-wide budget for what grows with a message
	// while it arrives; nil is none.
	Memory *membudget.Budget
	// State is the store of what outlives a transaction (the greylist,
	// counters); nil when the engine has none (check and replay read it
	// or not at all, and never write it: see Def.Record).
	State state.Store
	// Section is the check's own config section, as the config loader
	// decoded it (nil when the file has none): each check asserts its
	// own type.
	Section any
	// Now is the clock of a check that keeps time itself [time.Now];
	// tests give the store's clock.
	Now func() time.Time
}

// Def is a check as the engine runs it.
type Def struct {
	// Stage is the first stage the check can run at; rules may read its
	// facts from then on.
	Stage Stage
	// Deps are the checks whose facts it reads (View.Facts); it runs
	// after them.
	Deps []string
	// Run does the check under ctx's deadline. Nil when the check is
	// not enabled in this configuration (no resolver, no zones): it
	// then never runs and its facts stay empty.
	Run func(ctx context.Context, v View) Result
	// Quick, when set, may answer at once, without I/O, instead of Run
	// (DKIM for a message known to be unsigned, the header checks, whose
	// work the header size limit bounds). Its answer is taken on the
	// deciding goroutine: every goroutine started wakes a thread, which
	// costs more than such a check.
	Quick func(v View) (Result, bool)
	// Tap, when set, starts a Tap for a message while it arrives (data
	// stage checks only).
	Tap func(ctx context.Context) Tap
	// PerRcpt makes the check decide each recipient rather than the
	// transaction (greylisting: its triplet holds the recipient). It
	// runs at every rcpt decision with View.Rcpt set, and at no other
	// stage; its facts are those of the recipient being decided, and
	// its answer is logged per recipient ("NAME <addr>" in the verdict
	// log's checks), from which replay decides again.
	PerRcpt bool
	// OnlyNamed keeps the check for rules that name it (its facts, or
	// checks.NAME): rules that read every check's result (checks,
	// temperrors) do not make it run. For a check that is a sign some
	// sites use, not a verdict, and that costs lookups (reverse DNS).
	OnlyNamed bool
	// Record, when set, writes what the check's answer means for later
	// transactions (a greylist triplet's first attempt). The engine
	// calls it after the verdict of the stage the check ran at, with the
	// view and the result the check had, and only when it serves mail:
	// check and replay decide without leaving a trace. verdict says
	// what the stage decided. A check answered once per transaction
	// (not PerRcpt) that ran at rcpt has its Record called after every
	// recipient's decision from then on, with that one answer: its
	// answer stands for every recipient. A check with Record runs at its
	// own Stage whenever a rule of that stage or a later one reads it,
	// so that it sees the decisions it records. An error is logged and
	// counted; it never changes the verdict, which has been given.
	Record func(ctx context.Context, v View, r Result, verdict Verdict) error
	// Timeout, when above 0, bounds Run instead of the engine's check
	// timeout (limits.check_timeout): a virus scan of a large message
	// may need longer than a DNS walk. A check that sets it says so in
	// its config section.
	Timeout time.Duration
}

// Verdict is what a stage decided, as Record sees it.
type Verdict struct {
	// Refused is set when the stage refused (4xx or 5xx), and Permanent
	// when the refusal was a 5xx: the client will not retry.
	Refused, Permanent bool
	// UnknownRcpt is set at rcpt when recipient verification found the
	// recipient being decided unknown (rcpt_verify.result "unknown"):
	// what a harvester's guesses look like.
	UnknownRcpt bool
}

// Definer is what a check's facts type implements: the facts type names
// the check, and Define builds it for one configuration. Define is called
// on the zero value and must not depend on it.
type Definer interface {
	Define(env Env) Def
}

// QuickMaxBytes is the largest message a check that reads the content
// (the MIME walk, DKIM's hashes) handles in its Quick, at once on the
// deciding goroutine, rather than on a goroutine of its own under its
// deadline. Such work is on bytes in memory, no I/O, and for most mail
// (a few KiB to tens) costs less than the hand-off; a big message, whose
// archives may be opened too, keeps the deadline.
const QuickMaxBytes = 256 << 10

// CacheFirst is the Quick of a check whose Run does nothing but DNS
// lookups through Env.Resolver: it runs run at once, on the deciding
// goroutine, with lookups answered from the resolver's cache alone
// (resolver.CacheOnly), and declines if one was not there; the engine
// then runs run as it runs any check, under its deadline. A busy MX sees
// the same senders again and again: their records are cached, and such
// a check then costs a lookup in memory, not a goroutine and the wake-ups
// it takes.
func CacheFirst(run func(ctx context.Context, v View) Result) func(v View) (Result, bool) {
	return func(v View) (Result, bool) {
		ctx := resolver.CacheOnly(context.Background())
		res := run(ctx, v)
		if resolver.Missed(ctx) {
			return Result{}, false
		}
		return res, true
	}
}
