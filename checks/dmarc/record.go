package dmarc

import (
	"fmt"
	"net/url"
	"strings"

	msgdmarc "github.com/emersion/go-msgauth/dmarc"
	lru "github.com/hashicorp/golang-lru/v2"
)

// policyRecord is a DMARC record as this check uses it: go-msgauth's
// parsed Record plus the DMARCbis np= tag, which go-msgauth does not know.
type policyRecord struct {
	rec *msgdmarc.Record
	np  string // RFC 9091 / DMARCbis non-existent subdomain policy, "" if absent
	// dropped lists the tags discarded for a syntax error, for Detail.
	dropped []string
}

// parsedRecords caches parseRecord by the record's text: the same few
// records come back for every message from a domain, and parsing one has
// go-msgauth judge each tag on its own. The results are never modified.
var parsedRecords, _ = lru.New[string, parsedRecord](1024)

// maxCachedRecord keeps records an attacker's domain could make huge out
// of the cache.
const maxCachedRecord = 1024

type parsedRecord struct {
	r      policyRecord
	ok     bool
	detail string
}

// parseRecordCached is parseRecord through parsedRecords.
func parseRecordCached(txt string) (policyRecord, bool, string) {
	if p, ok := parsedRecords.Get(txt); ok {
		return p.r, p.ok, p.detail
	}
	r, ok, detail := parseRecord(txt)
	if len(txt) <= maxCachedRecord {
		parsedRecords.Add(txt, parsedRecord{r, ok, detail})
	}
	return r, ok, detail
}

// tag is one tag=value pair of a record (RFC 7489 §6.4).
type tag struct{ name, value string }

// splitTags splits a TXT record into its tag-spec list. Names are
// lower-cased (the ABNF's literals are case-insensitive); a part without
// '=' is kept with an empty name so that the caller can discard it.
func splitTags(txt string) []tag {
	var tags []tag
	for part := range strings.SplitSeq(txt, ";") {
		if strings.Trim(part, " \t") == "" {
			continue // the ABNF allows a trailing ';'
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			tags = append(tags, tag{value: strings.Trim(part, " \t")})
			continue
		}
		tags = append(tags, tag{
			name:  strings.ToLower(strings.Trim(name, " \t")),
			value: strings.Trim(value, " \t"),
		})
	}
	return tags
}

// isDMARCRecord reports whether a TXT record is a DMARC record: its first
// tag must be v=DMARC1, matched exactly (RFC 7489 §6.3 "v"; §6.6.3 steps 2
// and 4 discard every other TXT record at the name).
func isDMARCRecord(txt string) bool {
	tags := splitTags(txt)
	return len(tags) > 0 && tags[0].name == "v" && tags[0].value == "DMARC1"
}

// parseRecord parses a DMARC record with go-msgauth, applying RFC 7489's
// error handling, which go-msgauth (refusing the whole record for any bad
// tag) does not:
//
//   - §6.3: unknown tags are ignored, and a syntax error in a tag other than
//     p or sp discards that tag in favour of its default;
//   - §6.6.3 step 6: a missing or invalid p, or an invalid sp, makes the
//     record count as p=none when rua holds a valid URI, and otherwise
//     means no DMARC processing at all (ok false).
func parseRecord(txt string) (r policyRecord, ok bool, detail string) {
	tags := splitTags(txt)
	var (
		kept     []string
		p, sp    string
		spBad    bool
		validRUA bool
	)
	for _, t := range tags[1:] { // tags[0] is v=DMARC1, as isDMARCRecord checked
		switch t.name {
		case "p", "sp", "np":
			v := strings.ToLower(t.value)
			valid := v == "none" || v == "quarantine" || v == "reject"
			switch {
			case t.name == "p" && valid:
				p = v
			case t.name == "p":
				p = ""
			case t.name == "sp" && valid:
				sp, spBad = v, false
			case t.name == "sp":
				sp, spBad = "", true
			case valid:
				r.np = v
			default:
				r.np = ""
				r.dropped = append(r.dropped, t.name)
			}
		case "adkim", "aspf", "fo", "pct", "rf", "ri", "rua", "ruf":
			v := t.value
			if t.name == "adkim" || t.name == "aspf" {
				v = strings.ToLower(v)
			}
			spec := t.name + "=" + v
			// Let go-msgauth judge each tag alone, so that one bad tag
			// costs only itself.
			if _, err := msgdmarc.Parse("v=DMARC1; p=none; " + spec); err != nil {
				r.dropped = append(r.dropped, t.name)
				continue
			}
			if t.name == "rua" && hasValidURI(v) {
				validRUA = true
			}
			kept = append(kept, spec)
		default:
			// §6.3: unknown tags MUST be ignored (this includes DMARCbis
			// tags such as psd= and t=, and parts without '=').
		}
	}
	if p == "" || spBad {
		// §6.6.3 step 6.
		if !validRUA {
			what := "no valid p="
			if p != "" {
				what = "an invalid sp="
			}
			return policyRecord{}, false, "record has " + what + " and no valid rua=, so DMARC does not apply (RFC 7489 §6.6.3)"
		}
		p, sp = "none", ""
		detail = "record has no valid p= or sp=; treated as p=none for its rua= (RFC 7489 §6.6.3)"
	}
	spec := "v=DMARC1; p=" + p
	if sp != "" {
		spec += "; sp=" + sp
	}
	for _, k := range kept {
		spec += "; " + k
	}
	rec, err := msgdmarc.Parse(spec)
	if err != nil {
		// Every part was checked above; this is a bug, not a record
		// problem, and the safe answer is not to apply DMARC.
		return policyRecord{}, false, fmt.Sprintf("dmarc: cannot parse record: %v", err)
	}
	r.rec = rec
	return r, true, detail
}

// hasValidURI reports whether a rua= value holds at least one syntactically
// valid reporting URI (RFC 7489 §6.4 dmarc-uri: a URI with an optional
// "!size" suffix).
func hasValidURI(list string) bool {
	for u := range strings.SplitSeq(list, ",") {
		u = strings.Trim(u, " \t")
		if i := strings.LastIndexByte(u, '!'); i >= 0 {
			u = u[:i]
		}
		if pu, err := url.Parse(u); err == nil && pu.Scheme != "" && pu.Opaque+pu.Host+pu.Path != "" {
			return true
		}
	}
	return false
}
