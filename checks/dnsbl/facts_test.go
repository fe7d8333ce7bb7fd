package dnsbl

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
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
		res := d.Run(context.Background(), checktest.View{ClientIP: netip.MustParseAddr(tc.ip)})
		f := res.Facts.(Facts)
		if f.Allowed != tc.allowed || !slices.Equal(f.AllowLists, tc.lists) {
			t.Errorf("%s: allowed %v by %q, want %v by %q (facts %+v)", tc.ip, f.Allowed, f.AllowLists, tc.allowed, tc.lists, f)
		}
	}
}

// testView is a check.View with only a client.
