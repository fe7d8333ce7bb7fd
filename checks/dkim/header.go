package dkim

import (
	"bufio"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// The functions in this file follow go-msgauth v0.7.0's header parsing
// (dkim/header.go): the same split into fields and the same recognition of
// DKIM-Signature fields, so that this check and go-msgauth (which signs in
// the tests, and which an operator may compare with) see the same
// signatures in every message. TestHeaderParityWithGoMsgauth holds the two
// together.

// sigField is one DKIM-Signature field as found in the header.
type sigField struct {
	Signature
	keyName string // selector._domainkey.domain, the key record's name
	field   string // the whole field as received, final CRLF included
	value   string // its value, trimmed
}

// readHeader reads header fields up to the empty line, unfolding nothing:
// each field keeps its continuation lines, each line ending in CRLF.
func readHeader(r *bufio.Reader) ([]string, error) {
	tr := textproto.NewReader(r)
	var h []string
	// The field being read is built here, not by adding each line to a
	// string (as go-msgauth does), which costs the square of its length.
	var field strings.Builder
	for {
		l, err := tr.ReadLine()
		if err != nil {
			if field.Len() > 0 {
				h = append(h, field.String())
			}
			return h, fmt.Errorf("failed to read header: %v", err)
		}
		if len(l) == 0 {
			if field.Len() > 0 {
				h = append(h, field.String())
			}
			return h, nil
		}
		if field.Len() == 0 || l[0] != ' ' && l[0] != '\t' {
			if field.Len() > 0 {
				h = append(h, field.String())
				field.Reset()
			}
		} // else a continuation line (RFC 5322 §2.2.3)
		field.WriteString(l)
		field.WriteString("\r\n")
	}
}

// parseHeaderField splits a field into its trimmed name and value.
func parseHeaderField(s string) (string, string) {
	k, v, _ := strings.Cut(s, ":")
	return strings.TrimSpace(k), strings.TrimSpace(v)
}

// parseTags parses a tag-list (RFC 6376 §3.2). On a syntax error it returns
// the tags read so far with the error.
func parseTags(s string) (map[string]string, error) {
	tags := make(map[string]string)
	for _, pair := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			return tags, errors.New("malformed tag list")
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup {
			// RFC 6376 §3.2: tags with duplicate names MUST NOT occur.
			return tags, errors.New("duplicate tag name")
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}

// signaturesOf returns the DKIM-Signature fields of h, in header order,
// with the facts their tags state. Malformed tag lists give what could be
// read; parseSig reports the error.
func signaturesOf(h []string) []sigField {
	var sigs []sigField
	for _, kv := range h {
		k, v := parseHeaderField(kv)
		if !strings.EqualFold(k, "DKIM-Signature") {
			continue
		}
		tags, _ := parseTags(v)
		s := sigField{field: kv, value: v, Signature: Signature{
			Domain:    stripWhitespace(tags["d"]),
			Selector:  stripWhitespace(tags["s"]),
			Algorithm: stripWhitespace(tags["a"]),
		}}
		_, s.BodyLength = tags["l"] // RFC 6376 §3.5 l=, §8.2
		for _, name := range strings.Split(tags["h"], ":") {
			if strings.EqualFold(stripWhitespace(name), "From") {
				s.FromSigned = true // RFC 6376 §5.4
			}
		}
		if i, ok := tags["i"]; ok {
			s.Identifier = stripWhitespace(i)
		} else if s.Domain != "" {
			s.Identifier = "@" + s.Domain // RFC 6376 §3.5 i= default
		}
		s.keyName = s.Selector + "._domainkey." + s.Domain // RFC 6376 §3.6.2.1
		sigs = append(sigs, s)
	}
	return sigs
}
