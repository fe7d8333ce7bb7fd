package dmarc

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
)

// ids returns n Message-IDs of the kind a mail program makes.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%d.m%d@mail.sender.test", 1700000000+i, i)
	}
	return out
}

// TestSample holds pct sampling (RFC 7489 §6.6.4) to its promises: pct=0
// samples nothing and pct=100 everything, whatever the identity; a message
// sampled at one pct is sampled at every higher one; pct=50 samples about
// half; and the sample is a fixed function of the From domain and the
// Message-ID, pinned here, since a replay of an old verdict log and
// "mxguard check" must draw what serve drew.
func TestSample(t *testing.T) {
	for _, id := range append(ids(300), "", "<x>", "\x00\xff") {
		for _, pct := range []int{-1, 0} {
			if Sample(pct, "pct.test", id) {
				t.Errorf("Sample(%d, %q) = true", pct, id)
			}
		}
		for _, pct := range []int{100, 101} {
			if !Sample(pct, "pct.test", id) {
				t.Errorf("Sample(%d, %q) = false", pct, id)
			}
		}
		for pct := 1; pct < 100; pct++ {
			if Sample(pct, "pct.test", id) && !Sample(pct+1, "pct.test", id) {
				t.Errorf("%q is sampled at pct=%d but not at %d", id, pct, pct+1)
			}
		}
	}

	var got []int
	for i, id := range ids(20) {
		if Sample(50, "pct.test", id) {
			got = append(got, i)
		}
	}
	if want := []int{4, 6, 7, 13, 17, 18}; !slices.Equal(got, want) {
		t.Errorf("pct=50 samples ids %v, want %v", got, want)
	}
	// The From domain is part of the identity: the same Message-IDs
	// spread differently for another domain.
	var other []int
	for i, id := range ids(20) {
		if Sample(50, "other.test", id) {
			other = append(other, i)
		}
	}
	if slices.Equal(other, got) {
		t.Errorf("pct=50 samples the same ids %v for other.test", other)
	}

	for _, pct := range []int{1, 10, 20, 50, 90} {
		n := 0
		all := ids(10000)
		for _, id := range all {
			if Sample(pct, "pct.test", id) {
				n++
			}
		}
		if want := pct * len(all) / 100; n < want-len(all)/50 || n > want+len(all)/50 {
			t.Errorf("pct=%d samples %d of %d messages, want %d±%d", pct, n, len(all), want, len(all)/50)
		}
	}
}

func TestApplied(t *testing.T) {
	in, out := ids(5)[4], ids(1)[0] // sampled and not at pct=50 (TestSample)
	tests := []struct {
		policy      string
		pct         int
		id          string
		want        string
		wantSampled bool
	}{
		{policy: "reject", pct: 100, id: out, want: "reject", wantSampled: true},
		{policy: "reject", pct: 0, id: in, want: "quarantine"},
		{policy: "reject", pct: 50, id: in, want: "reject", wantSampled: true},
		{policy: "reject", pct: 50, id: out, want: "quarantine"},
		{policy: "quarantine", pct: 100, id: out, want: "quarantine", wantSampled: true},
		{policy: "quarantine", pct: 0, id: in, want: "none"},
		{policy: "quarantine", pct: 50, id: out, want: "none"},
		{policy: "none", pct: 0, id: in, want: "none"},
		{policy: "none", pct: 100, id: in, want: "none", wantSampled: true},
		{policy: "", pct: 100, id: in, want: ""},
		{policy: "", pct: 0, id: in, want: ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("p=%s pct=%d %s", tc.policy, tc.pct, tc.id), func(t *testing.T) {
			got, sampled := Applied(tc.policy, tc.pct, "pct.test", tc.id)
			if got != tc.want || sampled != tc.wantSampled {
				t.Errorf("Applied = %q, %v; want %q, %v", got, sampled, tc.want, tc.wantSampled)
			}
		})
	}
}

// TestCheckPct runs sampling through Check: the record's pct, the policy
// that applies (p, sp or np) and the Message-ID in Input decide
// AppliedPolicy; Policy stays what the record publishes.
func TestCheckPct(t *testing.T) {
	in, out := ids(5)[4], ids(1)[0]
	// The From domain is part of the sampled identity: find one
	// Message-ID in and one out of pct=50 for pct50.test.
	var in50, out50 string
	for _, id := range ids(20) {
		if Sample(50, "pct50.test", id) {
			in50 = cmp.Or(in50, id)
		} else {
			out50 = cmp.Or(out50, id)
		}
	}
	c, s := newChecker(t, true)
	err := s.AddZone(`$ORIGIN test.
_dmarc.pct0      300 TXT "v=DMARC1; p=reject; pct=0"
_dmarc.qpct0     300 TXT "v=DMARC1; p=quarantine; pct=0"
_dmarc.pct50     300 TXT "v=DMARC1; p=reject; pct=50"
_dmarc.sppct     300 TXT "v=DMARC1; p=none; sp=reject; pct=0"
www.sppct        300 A   192.0.2.4
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		from, msgID string
		in          Input
		want        Result
	}{
		{from: "pct0.test", msgID: in,
			want: Result{Result: Fail, From: "pct0.test", Policy: "reject", AppliedPolicy: "quarantine", Percent: 0, Record: "pct0.test"}},
		{from: "pct0.test", msgID: "", in: spf("pass", "pct0.test"),
			want: Result{Result: Pass, From: "pct0.test", Policy: "reject", AppliedPolicy: "quarantine", Percent: 0, SPFAligned: true, Record: "pct0.test"}},
		{from: "qpct0.test", msgID: in,
			want: Result{Result: Fail, From: "qpct0.test", Policy: "quarantine", AppliedPolicy: "none", Percent: 0, Record: "qpct0.test"}},
		{from: "www.sppct.test", msgID: in,
			want: Result{Result: Fail, From: "www.sppct.test", Policy: "reject", AppliedPolicy: "quarantine", Percent: 0, Record: "sppct.test"}},
		{from: "sppct.test", msgID: in,
			want: Result{Result: Fail, From: "sppct.test", Policy: "none", AppliedPolicy: "none", Percent: 0, Record: "sppct.test"}},
		{from: "pct50.test", msgID: in50,
			want: Result{Result: Fail, From: "pct50.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 50, Record: "pct50.test"}},
		{from: "pct50.test", msgID: out50,
			want: Result{Result: Fail, From: "pct50.test", Policy: "reject", AppliedPolicy: "quarantine", Percent: 50, Record: "pct50.test"}},
		{from: "reject.test", msgID: out,
			want: Result{Result: Fail, From: "reject.test", Policy: "reject", AppliedPolicy: "reject", Sampled: true, Percent: 100, Record: "reject.test"}},
		{from: "norecord.test", msgID: in,
			want: Result{Result: None, From: "norecord.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.from+" "+tc.msgID, func(t *testing.T) {
			in := tc.in
			in.Header, in.MessageID = from(tc.from), tc.msgID
			got := c.Check(context.Background(), in)
			got.Detail = ""
			if got != tc.want {
				t.Errorf("Check:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
