package headers

import (
	"mxguard/internal/mailaddr"
)

// mailbox is one address of a From field as a reader would show it.
type mailbox struct {
	display string // the display name, RFC 2047 decoded; for an address without <>, its comments
	domain  string // the domain as written, CFWS removed; "" when there is none
}

// parseMailboxes reads a From value (RFC 5322 §3.6.2) with the lenient
// mode of the one address reader that DMARC reads strictly
// (mailaddr.Lenient): it never fails, since it is looking for what a reader
// might show, not deciding whether the field is valid, and wherever the
// strict mode accepts the value it reads the same addresses from it. Their
// number is counted as DMARC counts them.
func parseMailboxes(v string) []mailbox {
	addrs, _ := mailaddr.Parse(v, mailaddr.Lenient)
	boxes := make([]mailbox, len(addrs))
	for i, a := range addrs {
		b := mailbox{domain: a.Domain}
		if a.Angle {
			b.display = decodeWords(a.Display)
		}
		if b.display == "" {
			// The old "addr (Name)" form puts the name in a comment
			// (RFC 5322 §3.4, obsolete practice), and readers show it.
			b.display = decodeWords(a.Comment)
		}
		boxes[i] = b
	}
	return boxes
}
