package dmarc

import (
	"reflect"
	"strings"
	"testing"
)

// The cache gives what parsing gives, and keeps long records out.
func TestParseRecordCached(t *testing.T) {
	for _, txt := range []string{
		"v=DMARC1; p=reject; np=quarantine; pct=50",
		"v=DMARC1; p=bogus; sp=none",
		"v=DMARC1; p=none; rua=mailto:" + strings.Repeat("a", maxCachedRecord) + "@example.org",
	} {
		r1, ok1, d1 := parseRecord(txt)
		for range 2 {
			r2, ok2, d2 := parseRecordCached(txt)
			if !reflect.DeepEqual(r1, r2) || ok1 != ok2 || d1 != d2 {
				t.Errorf("%.40q: cached (%v %q) differs from parsed (%v %q)", txt, ok2, d2, ok1, d1)
			}
		}
		if _, cached := parsedRecords.Get(txt); cached != (len(txt) <= maxCachedRecord) {
			t.Errorf("%.40q (%d octets): cached %v", txt, len(txt), cached)
		}
	}
}
