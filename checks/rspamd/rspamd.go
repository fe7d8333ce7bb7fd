// Package rspamd asks a running rspamd (the spam filtering daemon) what it
// makes of a message.
//
// The message goes to the /checkv2 endpoint of rspamd's normal worker
// (port 11333 by default) as the body of an HTTP POST, chunked, since it
// is read from the spool as it is sent; the envelope goes in the
// request's headers (IP, Helo, Hostname, From, one Rcpt per recipient,
// Queue-Id), as rspamd's protocol defines them
// (https://rspamd.com/doc/developers/protocol.html). rspamd answers with a
// JSON object: its score, the required score, the action it chose (no
// action, greylist, add header, rewrite subject, soft reject, reject) and
// the symbols (its rules) that fired.
//
// The check does not ask for "Pass: all": rspamd then skips the rules it
// would not need to reach its action, as it does for every MTA.
package rspamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MaxReplyBytes bounds what is read of rspamd's answer. A reply lists
// every symbol with its options (URLs, addresses): tens of KiB for the
// worst spam; beyond 1 MiB it is not an answer worth waiting for.
const MaxReplyBytes = 1 << 20

// MaxSymbols bounds the symbols kept of one answer; rspamd's own default
// set rarely gives more than 30.
const MaxSymbols = 100

// maxSymbolBytes bounds one symbol's name; rspamd's are upper-case words
// of a few dozen bytes (R_SPF_ALLOW, MIME_HTML_ONLY).
const maxSymbolBytes = 128

// MaxConns bounds the connections to one rspamd: a scan past it waits for
// a free connection, under its deadline. rspamd's normal worker serves
// many requests per process; more connections than this only queue
// there.
const MaxConns = 64

// transport is every client's connection pool: one per process, so that
// a reload, which builds new clients, does not leave pools behind.
var transport = &http.Transport{
	// rspamd is the site's own service: never reach it through the
	// environment's HTTP proxy.
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxConnsPerHost:     MaxConns,
	MaxIdleConns:        MaxConns,
	MaxIdleConnsPerHost: MaxConns,
	IdleConnTimeout:     60 * time.Second,
	// rspamd's reply is JSON of a few KiB: compression would cost more
	// than it saves on loopback.
	DisableCompression: true,
	ForceAttemptHTTP2:  false,
}

// Client talks to one rspamd.
type Client struct {
	// URL is the /checkv2 endpoint.
	URL  string
	base string
	http *http.Client
}

// NewClient is a client for the rspamd whose normal worker is at base
// (http://127.0.0.1:11333).
func NewClient(base string) (*Client, error) {
	u, err := ParseURL(base)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/checkv2"
	// The deadline comes from each request's context.
	return &Client{URL: u.String(), base: base, http: &http.Client{Transport: transport}}, nil
}

// String names the rspamd, as the config writes it, for details and logs.
func (c *Client) String() string { return c.base }

// ParseURL reads rspamd's URL as the config writes it: http or https,
// with a host, no query or fragment.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("rspamd: %q: %w", s, errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("rspamd: %q: the scheme must be http or https", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("rspamd: %q: the host is missing", s)
	case u.User != nil:
		return nil, fmt.Errorf("rspamd: %q: a user in the URL is not supported", s)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("rspamd: %q: a query or fragment is not supported", s)
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscan(p, &n); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("rspamd: %q: the port must be a number in 1-65535", s)
		}
	}
	return u, nil
}

// Envelope is what rspamd is told of the transaction besides the message.
type Envelope struct {
	Client netip.Addr
	// HELO is the client's HELO/EHLO name, PTR its verified reverse DNS
	// name ("" when not known).
	HELO, PTR string
	// MailFrom is the reverse path ("" for <>), Rcpts the recipients.
	MailFrom string
	Rcpts    []string
	// QueueID names the transaction in rspamd's log: mxguard's
	// transaction id, which its verdict log has too.
	QueueID string
}

// Reply is rspamd's answer, as far as the check reads it.
type Reply struct {
	// Score and Required are its score and required_score.
	Score, Required float64
	// Action is the action it chose (NoAction, …, Reject).
	Action string
	// Symbols are the names of the symbols that fired, sorted, at most
	// MaxSymbols.
	Symbols []string
}

// Check sends env and what r reads to rspamd and returns its answer. It
// reads r as it sends (net/http's chunked writer holds one buffer), under
// ctx. An error is any answer that is not a verdict: no connection, a
// timeout, a status other than 200, a reply it cannot read.
func (c *Client) Check(ctx context.Context, env Envelope, r io.Reader) (Reply, error) {
	// Hide any other method of r (WriteTo, Len) from net/http, which
	// would otherwise size the body by them: it is read as a stream.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, struct{ io.Reader }{r})
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: %w", c, err)
	}
	setHeaders(req.Header, env)
	resp, err := c.http.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: %w", c, unwrapURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplyBytes+1))
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: reading the reply: %w", c, err)
	}
	if len(raw) > MaxReplyBytes {
		return Reply{}, fmt.Errorf("rspamd %s: a reply longer than %d bytes", c, MaxReplyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return Reply{}, fmt.Errorf("rspamd %s: HTTP status %d: %s", c, resp.StatusCode, clean(string(raw), 200))
	}
	rep, err := ParseReply(raw)
	if err != nil {
		return Reply{}, fmt.Errorf("rspamd %s: %w", c, err)
	}
	return rep, nil
}

// unwrapURL drops the *url.Error layer, which repeats the method and URL
// the caller names already.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// setHeaders writes the envelope as rspamd's request headers. Values come
// from the client (HELO, addresses): control characters are dropped, so
// that no value can end a header line.
func setHeaders(h http.Header, env Envelope) {
	h.Set("User-Agent", "mxguard")
	if env.Client.IsValid() {
		h.Set("IP", env.Client.Unmap().String())
	}
	if env.HELO != "" {
		h.Set("Helo", clean(env.HELO, 255))
	}
	if env.PTR != "" {
		h.Set("Hostname", clean(env.PTR, 255))
	}
	// rspamd reads From as the SMTP MAIL FROM; "<>" is the null sender.
	from := "<>"
	if env.MailFrom != "" {
		from = clean(env.MailFrom, 512)
	}
	h.Set("From", from)
	for _, r := range env.Rcpts {
		h.Add("Rcpt", clean(r, 512))
	}
	if env.QueueID != "" {
		h.Set("Queue-Id", clean(env.QueueID, 64))
	}
}

// reply is the part of rspamd's JSON that is read; every other field is
// ignored. Pointers tell a missing field from a zero.
type reply struct {
	Score    *float64                   `json:"score"`
	Required *float64                   `json:"required_score"`
	Action   *string                    `json:"action"`
	Symbols  map[string]json.RawMessage `json:"symbols"`
}

// ParseReply reads rspamd's JSON answer to /checkv2. It needs an action
// and a score: an answer without them is not a verdict. Fields it does
// not know are ignored; symbol names are made printable and bounded.
func ParseReply(raw []byte) (Reply, error) {
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return Reply{}, fmt.Errorf("a reply that is not rspamd's JSON: %w", err)
	}
	action := ""
	if r.Action != nil {
		action = clean(*r.Action, 64)
	}
	switch {
	case action == "":
		return Reply{}, errors.New("a reply without an action")
	case r.Score == nil:
		return Reply{}, errors.New("a reply without a score")
	case !finite(*r.Score) || (r.Required != nil && !finite(*r.Required)):
		return Reply{}, errors.New("a reply with a score that is not a number")
	}
	rep := Reply{Score: *r.Score, Action: action}
	if r.Required != nil {
		rep.Required = *r.Required
	}
	for name := range r.Symbols {
		if n := clean(name, maxSymbolBytes); n != "" {
			rep.Symbols = append(rep.Symbols, n)
		}
	}
	slices.Sort(rep.Symbols)
	rep.Symbols = slices.Compact(rep.Symbols)
	if len(rep.Symbols) > MaxSymbols {
		rep.Symbols = rep.Symbols[:MaxSymbols:MaxSymbols]
	}
	return rep, nil
}

// finite reports a score a rule can compare: JSON has no NaN or
// infinity, but a number past float64's range decodes as neither.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// clean keeps a value that goes into headers, SMTP replies and logs
// printable: no control characters, at most n bytes, cut between
// characters.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
