package smtpreply

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses a reply as a rules file writes it, "550 5.7.1 text": a
// reply code, an RFC 3463 enhanced status code of the same class, and text
// of one line. Its errors are shown to the rules file's author after
// "file:line:col: ", so they say what was expected.
func Parse(s string) (Reply, error) {
	f := strings.SplitN(strings.TrimSpace(s), " ", 3)
	if len(f) < 3 || strings.TrimSpace(f[2]) == "" {
		return Reply{}, fmt.Errorf("expected a reply like \"550 5.7.1 text\", got %q", s)
	}
	code, err := strconv.Atoi(f[0])
	if err != nil || len(f[0]) != 3 || code < 200 || code > 599 {
		return Reply{}, fmt.Errorf("expected a three-digit reply code, got %q", f[0])
	}
	enh, ok := parseEnhanced(f[1])
	if !ok {
		return Reply{}, fmt.Errorf("expected an enhanced status code like 5.7.1, got %q", f[1])
	}
	if enh.Class() != code/100 {
		// RFC 3463 §2: the class of the enhanced code is the class of the
		// reply; a 550 4.x.x confuses every client that reads both.
		return Reply{}, fmt.Errorf("enhanced code %s does not match reply code %d: its first digit must be %d", f[1], code, code/100)
	}
	r := Reply{Code: code, Enhanced: enh, Text: strings.TrimSpace(f[2])}
	if strings.ContainsAny(r.Text, "\r\n") {
		return Reply{}, fmt.Errorf("reply text must be one line")
	}
	return r, nil
}

// parseEnhanced reads "class.subject.detail", each a number from 0 to 999.
func parseEnhanced(s string) (Enhanced, bool) {
	var e Enhanced
	for i := range e {
		p, rest, found := strings.Cut(s, ".")
		if found == (i == len(e)-1) {
			return Enhanced{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return Enhanced{}, false
		}
		e[i], s = n, rest
	}
	return e, true
}

// SplitEnhanced takes an RFC 3463 enhanced status code off the front of a
// reply line's text, as a backend sends it ("2.0.0 Ok: queued"), when its
// class is the reply code's. Otherwise the enhanced code is zero and the
// text is returned whole: a code in the wrong class is not one RFC 3463 §2
// allows, so it is text.
func SplitEnhanced(code int, text string) (Enhanced, string) {
	head, rest, _ := strings.Cut(text, " ")
	e, ok := parseEnhanced(head)
	if !ok || e.Class() != code/100 {
		return Enhanced{}, text
	}
	return e, rest
}
