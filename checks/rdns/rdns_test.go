package rdns

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"mxguard/checks/resolver"
	"mxguard/checks/resolver/dnstest"
)

// zones: 127.0.0.2 has a name that resolves back; 127.0.0.3 one that
// does not; 127.0.0.4 none; 127.0.0.5 two names, the second good;
// 127.0.0.6 twelve bad names and a good one past MaxNames; 2001:db8::1
// resolves back over AAAA.
var zones = `
$TTL 60
$ORIGIN 0.0.127.in-addr.arpa.
@   SOA ns hostmaster 1 3600 600 86400 60
2   PTR mail.good.test.
3   PTR dyn-3.isp.test.
5   PTR Other.Good.test.
5   PTR mail.good.test.
` + manyPTR() + `
$ORIGIN 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.
@   PTR v6.good.test.

$ORIGIN test.
mail.good.test.   A    127.0.0.2
mail.good.test.   A    127.0.0.5
dyn-3.isp.test.   A    192.0.2.3
v6.good.test.     AAAA 2001:db8::1
last.good.test.   A    127.0.0.6
`

func manyPTR() string {
	var b strings.Builder
	for i := range 12 {
		b.WriteString("6   PTR bad" + string(rune('a'+i)) + ".isp.test.\n")
	}
	b.WriteString("6   PTR last.good.test.\n")
	return b.String()
}

func TestCheck(t *testing.T) {
	s := dnstest.Start(t, zones)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip, result, confirmed string
		names                 []string
	}{
		{ip: "127.0.0.2", result: Pass, confirmed: "mail.good.test", names: []string{"mail.good.test"}},
		{ip: "::ffff:127.0.0.2", result: Pass, confirmed: "mail.good.test", names: []string{"mail.good.test"}},
		{ip: "127.0.0.3", result: Fail, names: []string{"dyn-3.isp.test"}},
		{ip: "127.0.0.4", result: None},
		{ip: "127.0.0.5", result: Pass, confirmed: "mail.good.test"},
		{ip: "127.0.0.6", result: Fail},
		{ip: "2001:db8::1", result: Pass, confirmed: "v6.good.test", names: []string{"v6.good.test"}},
	} {
		res := Check(context.Background(), r, netip.MustParseAddr(tc.ip))
		f := res.Facts.(Facts)
		if res.Result != tc.result || f.Result != tc.result || f.Confirmed != tc.confirmed || f.ClientPTR() != tc.confirmed {
			t.Errorf("%s: %s %+v (%s), want %s confirmed %q", tc.ip, res.Result, f, res.Detail, tc.result, tc.confirmed)
		}
		if tc.names != nil && !slices.Equal(f.Names, tc.names) {
			t.Errorf("%s: names %q, want %q", tc.ip, f.Names, tc.names)
		}
	}
}

func TestTemperror(t *testing.T) {
	s := dnstest.Start(t, zones)
	r, err := resolver.New(resolver.Options{Servers: []string{s.Addr()}, Timeout: 200 * time.Millisecond, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // nobody answers
	res := Check(context.Background(), r, netip.MustParseAddr("127.0.0.2"))
	if res.Result != Temperror {
		t.Errorf("DNS down: %s (%s), want temperror", res.Result, res.Detail)
	}
}
