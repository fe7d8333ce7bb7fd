package rcpt

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFileErrors caps how many problems one load reports: a binary file
// handed over by mistake would otherwise produce one error per line.
const maxFileErrors = 20

// FileError is one bad line of a recipients file. Its Error method renders
// it as "FILE:LINE: MSG", the format editors and compilers use.
type FileError struct {
	File string // file name as given in Options.File
	Line int    // 1-based line number
	Msg  string // what is wrong, lower-case, no trailing period
}

// Error implements error.
func (e *FileError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// recipientSet is a parsed recipients file, compiled once at load so that
// nothing is parsed on the request path. Every key is lower-cased.
type recipientSet struct {
	file    string
	addrs   map[string]struct{} // full addresses, "alice@example.org"
	domains map[string]struct{} // catch-all domains, "example.org"
}

// lookup reports whether the file lists addr, and the entry that matched
// ("alice@example.org" or "@example.org").
//
// Local parts are compared case-insensitively. RFC 5321 §2.4 lets a host
// treat local parts as case-sensitive, but almost none do, and a file
// edited by hand should not reject "Alice@" when it lists "alice@".
func (s *recipientSet) lookup(addr string) (string, bool) {
	if s == nil {
		return "", false
	}
	addr = strings.ToLower(addr)
	if _, ok := s.addrs[addr]; ok {
		return addr, true
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		if _, ok := s.domains[addr[i+1:]]; ok {
			return addr[i:], true
		}
	}
	return "", false
}

// loadFile reads and parses the recipients file at path.
func loadFile(path string) (*recipientSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rcpt: recipients file: %w", err)
	}
	return parseFile(path, data)
}

// parseFile parses a recipients file: one address per line, "@domain" for
// a catch-all, '#' starting a comment (at the start of a line, or after
// white space following the address), blank lines ignored. It collects
// every bad line (up to maxFileErrors) as a *FileError, joined with
// errors.Join so that errors.As finds each one.
func parseFile(name string, data []byte) (*recipientSet, error) {
	s := &recipientSet{
		file:    name,
		addrs:   make(map[string]struct{}),
		domains: make(map[string]struct{}),
	}
	var errs []error
	bad := func(line int, format string, args ...any) {
		if len(errs) == maxFileErrors {
			errs = append(errs, &FileError{File: name, Line: line, Msg: "too many errors"})
		}
		if len(errs) <= maxFileErrors {
			errs = append(errs, &FileError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
		}
	}
	for n, line := range strings.Split(string(data), "\n") {
		n++
		if !utf8.ValidString(line) {
			bad(n, "not valid UTF-8")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) > 1 && !strings.HasPrefix(fields[1], "#") {
			bad(n, "expected one address per line, got %q after %q", fields[1], fields[0])
			continue
		}
		addr := fields[0]
		if msg := checkEntry(addr); msg != "" {
			bad(n, "%s", msg)
			continue
		}
		addr = strings.ToLower(addr)
		if addr[0] == '@' {
			s.domains[addr[1:]] = struct{}{}
		} else {
			s.addrs[addr] = struct{}{}
		}
	}
	if len(errs) > maxFileErrors+1 {
		errs = errs[:maxFileErrors+1]
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// checkEntry validates one address or "@domain" entry and returns what is
// wrong with it, or "".
func checkEntry(addr string) string {
	for _, r := range addr {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character in %q", addr)
		}
	}
	if strings.HasPrefix(addr, "<") || strings.HasSuffix(addr, ">") {
		return fmt.Sprintf("write the address without angle brackets, got %q", addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return fmt.Sprintf("expected an address like user@example.org or a catch-all like @example.org, got %q", addr)
	}
	local, domain := addr[:at], addr[at+1:]
	// RFC 5321 §4.1.2: '@' may appear in a local part only if quoted.
	if strings.Contains(local, "@") && !(len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"') {
		return fmt.Sprintf("more than one '@' in %q", addr)
	}
	// RFC 5321 §4.5.3.1.1: a local part is at most 64 octets.
	if len(local) > 64 {
		return fmt.Sprintf("local part longer than 64 octets in %q", addr)
	}
	if msg := checkDomain(domain); msg != "" {
		return fmt.Sprintf("%s in %q", msg, addr)
	}
	return ""
}

// checkDomain validates a domain name (RFC 5321 §4.1.2 Domain, with
// U-labels allowed as RFC 6531 does) and returns what is wrong, or "".
// Address literals ("[192.0.2.1]") are not accepted: nobody receives mail
// for them at an MX.
func checkDomain(d string) string {
	switch {
	case d == "":
		return "missing domain"
	case len(d) > 253: // RFC 1035 §2.3.4, without the trailing dot
		return "domain longer than 253 octets"
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return "empty label in domain"
		}
		if len(label) > 63 { // RFC 1035 §2.3.4
			return "domain label longer than 63 octets"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "domain label starts or ends with '-'"
		}
		for _, r := range label {
			ok := r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
				r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r))
			if !ok {
				return fmt.Sprintf("invalid character %q in domain", r)
			}
		}
	}
	return ""
}
