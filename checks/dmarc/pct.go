package dmarc

import (
	"crypto/sha256"
	"encoding/binary"
	"unicode/utf8"
)

// Sample reports whether a message falls within the pct percent of
// messages that a record's policy is applied to (RFC 7489 §6.6.4: "at most
// pct percent of the affected messages"). pct 0 or less samples none and
// 100 or more samples all.
//
// The draw is not random but a fixed function of the message's identity:
// the From domain (the domain whose pct it is) and the Message-ID as the
// verdict log records it (without angle brackets). A message therefore
// gets the same answer from "mxguard serve", from "mxguard check" and
// from a replay of its logged verdict, and a retry of a refused message
// is refused again rather than let through on a second draw. The identity
// is SHA-256 hashed and its first 8 octets taken modulo 100, which spreads
// the Message-IDs that mail programs make evenly; a message is sampled
// when that bucket is below pct, so a message sampled at one pct is
// sampled at every higher one.
//
// A sender chooses its Message-ID, and so can choose to be in or out of
// the sample. That gives it nothing it could not have anyway: pct is the
// domain owner's choice to be lenient with a part of its failing mail, and
// the part left out still gets the next weaker policy (see Applied). All
// messages without a Message-ID from one domain share one bucket.
func Sample(pct int, from, messageID string) bool {
	switch {
	case pct <= 0:
		return false
	case pct >= 100:
		return true
	}
	if !utf8.ValidString(messageID) {
		// As the verdict log's JSON has it: each invalid octet becomes
		// U+FFFD, so that a replay draws from the same identity.
		messageID = string([]rune(messageID))
	}
	h := sha256.New()
	h.Write([]byte(from))
	h.Write([]byte{0}) // a domain holds no NUL: the first one ends it
	h.Write([]byte(messageID))
	sum := h.Sum(nil)
	return binary.BigEndian.Uint64(sum[:8])%100 < uint64(pct)
}

// Weaker returns the next weaker policy than policy (RFC 7489 §6.6.4: a
// message not sampled for "reject" is treated as if "quarantine" applied,
// and one not sampled for "quarantine" gets local classification as
// normal, that is "none").
func Weaker(policy string) string {
	switch policy {
	case PolicyReject:
		return PolicyQuarantine
	case PolicyQuarantine:
		return PolicyNone
	}
	return policy
}

// Applied returns the policy a message is subject to after pct sampling:
// policy when Sample samples it, else Weaker(policy); and whether it was
// sampled. Without a policy (no record applies) it returns "", false.
func Applied(policy string, pct int, from, messageID string) (applied string, sampled bool) {
	if policy == "" {
		return "", false
	}
	if Sample(pct, from, messageID) {
		return policy, true
	}
	return Weaker(policy), false
}
