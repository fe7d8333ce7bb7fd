package policy

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"mxguard/checks/check"
	"mxguard/checks/clamav"
	"mxguard/checks/dkim"
	"mxguard/checks/dmarc"
	"mxguard/checks/dnsbl"
	"mxguard/checks/greylist"
	"mxguard/checks/harvest"
	"mxguard/checks/headers"
	"mxguard/checks/mime"
	"mxguard/checks/rdns"
	"mxguard/checks/rspamd"
	"mxguard/checks/spf"
	"mxguard/checks/uribl"
	"mxguard/internal/mailhdr"
)

// Found is the checks' registry, and what they found for one transaction.
//
// Adding a check is a folder under checks/ and one field here: the field's
// type is the check's facts (a check.Definer, whose Define builds the
// check), its expr tag the check's name in rules, in checks.NAME, in the
// verdict log (json) and in its config section. The engine finds every
// check, its stage and its dependencies from these fields; the facts table
// of docs/rules.md is generated from them. Facts embeds Found, so each
// check's facts are a top-level name in rules (spf.result) and in the
// verdict log, as they always were.
type Found struct {
	DNSBL dnsbl.Facts `expr:"dnsbl" json:"dnsbl"`
	// RDNS fills client.ptr (see clientPTR).
	RDNS    rdns.Facts    `expr:"rdns" json:"rdns"`
	Headers headers.Facts `expr:"headers" json:"headers"`
	SPF     spf.Facts     `expr:"spf" json:"spf"`
	DKIM    dkim.Facts    `expr:"dkim" json:"dkim"`
	DMARC   dmarc.Facts   `expr:"dmarc" json:"dmarc"`
	// Greylist is per recipient (check.Def.PerRcpt): its facts are
	// those of the recipient being decided, at rcpt only.
	Greylist greylist.Facts `expr:"greylist" json:"greylist"`
	// Harvest counts a client's unknown recipients over time (see
	// check.Def.Record): read once per transaction, from rcpt on.
	Harvest harvest.Facts `expr:"harvest" json:"harvest"`
	MIME    mime.Facts    `expr:"mime" json:"mime"`
	ClamAV  clamav.Facts  `expr:"clamav" json:"clamav"`
	URIBL   uribl.Facts   `expr:"uribl" json:"uribl"`
	Rspamd  rspamd.Facts  `expr:"rspamd" json:"rspamd"`
}

// registered is one field of Found.
type registered struct {
	name  string
	field int
	// perRcpt is the check's Def.PerRcpt, which must not depend on the
	// configuration.
	perRcpt bool
	check.Definer
}

// registry lists Found's fields in order, and registryByName finds them.
var registry, registryByName = func() ([]registered, map[string]registered) {
	t := reflect.TypeFor[Found]()
	var list []registered
	byName := map[string]registered{}
	for i := range t.NumField() {
		f := t.Field(i)
		d, ok := reflect.Zero(f.Type).Interface().(check.Definer)
		name := f.Tag.Get("expr")
		if !ok || name == "" || f.Tag.Get("json") != name {
			// A build defect: the registry is read when the program starts.
			panic(fmt.Sprintf("policy: Found.%s must be a check.Definer with equal expr and json tags", f.Name))
		}
		r := registered{name: name, field: i, Definer: d, perRcpt: d.Define(check.Env{}).PerRcpt}
		list = append(list, r)
		byName[name] = r
	}
	return list, byName
}()

// CheckNames are the names of the registered checks, in registry order.
func CheckNames() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.name
	}
	return out
}

// view is what one check sees of a transaction: values taken on the
// deciding goroutine before the check starts, so that a check still
// running after its deadline reads nothing the session goes on to change.
type view struct {
	client    netip.Addr
	helo      string
	mailFrom  string
	rcpt      string
	rcpts     []string
	ptr       string
	txID      string
	smtputf8  bool
	messageID string
	domains   []string
	content   Content
	header    []byte
	split     mailhdr.Split
	splitErr  error
	from      string
	fromErr   error
	deps      map[string]any
	tap       check.Tap
	size      int64
}

// view takes c's view of tx.
func (tx *Transaction) view(c *checker) *view {
	v := &view{client: tx.Client.Addr.Addr().Unmap(), helo: tx.Client.HELO, mailFrom: tx.MailFrom,
		smtputf8: tx.SMTPUTF8, messageID: tx.MessageID, domains: tx.localDomains, content: tx.Content,
		rcpts: slices.Clip(tx.Rcpts), ptr: tx.Client.PTR, txID: tx.ID}
	if c.PerRcpt {
		v.rcpt = tx.Rcpt
	}
	if c.Stage >= StageData {
		v.header = tx.Header()
		v.split, v.splitErr = tx.HeaderSplit()
		if tx.from != nil {
			v.from, v.fromErr = tx.from.Domain, tx.from.Err
		} else {
			v.fromErr = dmarc.ErrNoFrom
		}
		v.tap = tx.taps[c.name]
		v.size = tx.Size
	}
	if len(c.Deps) > 0 {
		v.deps = make(map[string]any, len(c.Deps))
		found := reflect.ValueOf(&tx.found).Elem()
		for _, d := range c.Deps {
			if r, ok := registryByName[d]; ok {
				v.deps[d] = found.Field(r.field).Interface()
			}
		}
	}
	return v
}

func (v *view) Client() netip.Addr                  { return v.client }
func (v *view) HELO() string                        { return v.helo }
func (v *view) MailFrom() string                    { return v.mailFrom }
func (v *view) Rcpt() string                        { return v.rcpt }
func (v *view) Rcpts() []string                     { return v.rcpts }
func (v *view) ClientPTR() string                   { return v.ptr }
func (v *view) TxID() string                        { return v.txID }
func (v *view) SMTPUTF8() bool                      { return v.smtputf8 }
func (v *view) MessageID() string                   { return v.messageID }
func (v *view) LocalDomains() []string              { return v.domains }
func (v *view) Header() []byte                      { return v.header }
func (v *view) HeaderSplit() (mailhdr.Split, error) { return v.split, v.splitErr }
func (v *view) From() (string, error)               { return v.from, v.fromErr }
func (v *view) Facts(name string) any               { return v.deps[name] }
func (v *view) Size() int64                         { return v.size }
func (v *view) Tap() check.Tap                      { return v.tap }

// Content reads the message as the backend will receive it: with the
// empty line that a malformed header section lacks (see HeaderSplit), so
// that DKIM verifies what every reader downstream sees.
func (v *view) Content() (io.Reader, error) {
	if v.content == nil {
		return bytes.NewReader(nil), nil
	}
	if v.splitErr != nil {
		return nil, v.splitErr
	}
	r, err := v.content.Reader()
	if err != nil || !v.split.Malformed {
		return r, err
	}
	if _, err := io.CopyN(io.Discard, r, int64(v.split.Body)); err != nil {
		return nil, fmt.Errorf("policy: reading the message: %w", err)
	}
	return io.MultiReader(bytes.NewReader(v.header), strings.NewReader("\r\n"), r), nil
}
