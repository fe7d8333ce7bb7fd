package confval

// Positioned checks that sections run after decoding. Each runs only when
// the key was written in the file and decoded cleanly (d.Node(path) !=
// nil): defaults are valid by construction, and a value that failed to
// decode has been reported already, so checking it again would only add
// noise.

import (
	"strings"

	"mxguard/internal/yamlpos"
)

// AtLeast reports path if its value is below lo; what names the kind of
// value ("an integer") for the message.
func AtLeast(d *yamlpos.Decoder, path, what string, v, lo int64) {
	if n := d.Node(path); n != nil && v < lo {
		d.Errorf(n, "%s: expected %s >= %d, got %s", path, what, lo, yamlpos.Lit(n.Value))
	}
}

// Positive reports a zero timeout: a timeout of 0 would mean "none", which
// lets a silent peer hold a connection forever.
func Positive(d *yamlpos.Decoder, path string, v Duration) {
	if n := d.Node(path); n != nil && v.Duration <= 0 {
		d.Errorf(n, "%s: expected a duration greater than 0, got %q", path, n.Value)
	}
}

// ValidDomain checks domain-name syntax (RFC 1035 "preferred name
// syntax", relaxed per RFC 1123 to allow leading digits): dot-separated
// labels of 1-63 letters, digits and inner hyphens, at most 253 bytes, and
// a last label that is not all digits, so an IPv4 address is not mistaken
// for one.
func ValidDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}
