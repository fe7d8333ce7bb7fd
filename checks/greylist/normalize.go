package greylist

import (
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Network is the client network a triplet is kept for: the /24 of an IPv4
// address, the /64 of an IPv6 one. Large senders retry from another
// address of a pool, nearly always within these (postgrey's and rspamd's
// choice too); an IPv6 /64 is one site's subnet (RFC 4291 §2.5.4).
func Network(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits) // bits fit both families
	return p
}

// numberWord is a run of digits standing as a word of a local part: the
// message or bounce number a VERP-style sender puts there
// (bounce-12345-678@lists.example).
var numberWord = regexp.MustCompile(`\b[0-9]+\b`)

// NormalizeSender is the envelope sender as a triplet holds it: the parts
// that senders rewrite for every message removed, so that a retry of the
// same message, or the next message of the same sender, matches.
//
//   - SRS (the Sender Rewriting Scheme of forwarders): SRS0=hash=tt=domain=local@forwarder
//     and SRS1=hash=forwarder==hash=tt=domain=local@forwarder2 become
//     local@domain, the original sender;
//   - BATV (prvs=tag=user@domain, and the reversed prvs=user=tag some
//     MTAs write) becomes user@domain: the tag changes daily;
//   - an extension (user+tag@domain) is removed, as are numbers standing
//     as words of the local part (VERP-style bounce addresses), each
//     becoming "#", as postgrey does;
//   - the result is in lower case.
//
// The null sender stays "".
func NormalizeSender(addr string) string {
	if addr == "" {
		return ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return lower(addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if l, d, ok := unSRS(local); ok {
		local, domain = l, d
	}
	local = unBATV(local)
	local = stripExtension(local)
	local = numberWord.ReplaceAllString(local, "#")
	return lower(local + "@" + domain)
}

// lower lower-cases s; bytes that are not UTF-8 are kept as they are
// rather than all becoming U+FFFD, which would give different addresses
// one key.
func lower(s string) string {
	if utf8.ValidString(s) {
		return strings.ToLower(s)
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// NormalizeRcpt is a recipient as a triplet holds it: its extension
// removed (user+tag@ours is one mailbox) and in lower case.
func NormalizeRcpt(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return lower(stripExtension(addr))
	}
	return lower(stripExtension(addr[:at]) + addr[at:])
}

// stripExtension removes a +extension from a local part; a local part that
// starts with + keeps it (it has nothing else).
func stripExtension(local string) string {
	if i := strings.IndexByte(local, '+'); i > 0 {
		return local[:i]
	}
	return local
}

// unSRS returns the original sender of an SRS address's local part
// (the SRS specification by Shevek, as libsrs2 implements it; the
// separator after SRS0/SRS1 may be =, + or -).
func unSRS(local string) (l, domain string, ok bool) {
	if len(local) < 5 {
		return "", "", false
	}
	switch strings.ToUpper(local[:4]) {
	case "SRS0":
		// SRS0=HHH=TT=domain=local
		return srs0Tail(local[5:])
	case "SRS1":
		// SRS1=HHH=forwarder==HHH=TT=domain=local: the part after "=="
		// (the separator after the first forwarder, then SRS0's "=") is
		// the SRS0 address's tail.
		i := strings.Index(local[5:], "==")
		if i < 0 {
			return "", "", false
		}
		return srs0Tail(local[5+i+2:])
	}
	return "", "", false
}

// srs0Tail reads HHH=TT=domain=local.
func srs0Tail(s string) (local, domain string, ok bool) {
	parts := strings.SplitN(s, "=", 4)
	if len(parts) != 4 || parts[2] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[3], parts[2], true
}

// batvTag is a BATV prvs tag: one key digit, three day digits, six hex
// digits of hash (draft-levine-smtp-batv-01 §4.1).
var batvTag = regexp.MustCompile(`^[0-9]{4}[0-9a-fA-F]{6}$`)

// unBATV removes a BATV prvs tag from a local part.
func unBATV(local string) string {
	if len(local) < 5 || !strings.EqualFold(local[:5], "prvs=") {
		return local
	}
	a, b, ok := strings.Cut(local[5:], "=")
	switch {
	case !ok:
		return local
	case batvTag.MatchString(a):
		return b
	case batvTag.MatchString(b):
		return a
	}
	return local
}
