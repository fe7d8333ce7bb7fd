package dnsbl

import (
	"context"
	"io"
	"mxguard/internal/mailhdr"
	"net/netip"
	"slices"
	"testing"
	"time"

	"mxguard/checks/check"
)

// A client on both a block list and an allow list shows the allow list
// hit as its own facts, not only as a lower score.
func TestFactsAllowList(t *testing.T) {
	_, r := newServer(t, time.Second)
	d := Facts{}.Define(check.Env{Resolver: r, Section: []Zone{{Zone: "bl.test", Weight: 5}, {Zone: "wl.test", Weight: -10}, {Zone: "codes.test", Weight: -1}}})
	for _, tc := range []struct {
		ip      string
		allowed bool
		lists   []string
	}{
		{ip: "127.0.0.2", allowed: true, lists: []string{"wl.test", "codes.test"}},
		{ip: "127.0.0.9", allowed: false},
	} {
		res := d.Run(context.Background(), testView(netip.MustParseAddr(tc.ip)))
		f := res.Facts.(Facts)
		if f.Allowed != tc.allowed || !slices.Equal(f.AllowLists, tc.lists) {
			t.Errorf("%s: allowed %v by %q, want %v by %q (facts %+v)", tc.ip, f.Allowed, f.AllowLists, tc.allowed, tc.lists, f)
		}
	}
}

// testView is a check.View with only a client.
type testView netip.Addr

func (v testView) Client() netip.Addr { return netip.Addr(v) }
func (testView) HELO() string         { return "" }
func (testView) MailFrom() string     { return "" }
func (testView) Rcpt() string         { return "" }
func (testView) SMTPUTF8() bool       { return false }
func (testView) MessageID() string    { return "" }
func (testView) LocalDomains() []string {
	return nil
}
func (testView) Header() []byte                      { return nil }
func (testView) HeaderSplit() (mailhdr.Split, error) { return mailhdr.Split{}, nil }
func (testView) From() (string, error)               { return "", nil }
func (testView) Content() (io.Reader, error)         { return nil, nil }
func (testView) Facts(string) any                    { return nil }
func (testView) Tap() check.Tap                      { return nil }
