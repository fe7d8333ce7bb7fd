// Package checktest gives the checks' tests a check.View made of plain
// values, so that a check is tested on exactly what the engine would show
// it, without an engine. It is for tests only: no production package
// imports it (internal/houserules holds that for every test helper).
package checktest

import (
	"bytes"
	"io"
	"net/netip"

	"mxguard/checks/check"
	"mxguard/internal/mailhdr"
)

// View is a transaction as a check sees it; its zero value is a
// transaction that has nothing yet.
type View struct {
	ClientIP                           netip.Addr
	HELOName, Sender, Recipient, MsgID string
	UTF8                               bool
	Domains                            []string
	HeaderBytes                        []byte
	Split                              mailhdr.Split
	SplitErr                           error
	FromDomain                         string
	FromErr                            error
	// Recipients are what Rcpts returns (Recipient is the one being
	// decided), PTR what ClientPTR returns and ID what TxID returns.
	Recipients []string
	PTR, ID    string
	// Message is what Content reads.
	Message []byte
	// Deps are the facts of the checks the check depends on, by name.
	Deps map[string]any
	// TapValue is what Tap returns.
	TapValue check.Tap
}

var _ check.View = View{}

// Client implements check.View.
func (v View) Client() netip.Addr { return v.ClientIP }

// HELO implements check.View.
func (v View) HELO() string { return v.HELOName }

// MailFrom implements check.View.
func (v View) MailFrom() string { return v.Sender }

// Rcpt implements check.View.
func (v View) Rcpt() string { return v.Recipient }

// Rcpts implements check.View.
func (v View) Rcpts() []string { return v.Recipients }

// ClientPTR implements check.View.
func (v View) ClientPTR() string { return v.PTR }

// TxID implements check.View.
func (v View) TxID() string { return v.ID }

// SMTPUTF8 implements check.View.
func (v View) SMTPUTF8() bool { return v.UTF8 }

// MessageID implements check.View.
func (v View) MessageID() string { return v.MsgID }

// LocalDomains implements check.View.
func (v View) LocalDomains() []string { return v.Domains }

// Header implements check.View.
func (v View) Header() []byte { return v.HeaderBytes }

// HeaderSplit implements check.View.
func (v View) HeaderSplit() (mailhdr.Split, error) { return v.Split, v.SplitErr }

// From implements check.View.
func (v View) From() (string, error) { return v.FromDomain, v.FromErr }

// Content implements check.View.
func (v View) Content() (io.Reader, error) { return bytes.NewReader(v.Message), nil }

// Size implements check.View.
func (v View) Size() int64 { return int64(len(v.Message)) }

// Facts implements check.View.
func (v View) Facts(name string) any { return v.Deps[name] }

// Tap implements check.View.
func (v View) Tap() check.Tap { return v.TapValue }
