package uribl

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net/netip"
	"net/url"
	"strings"

	message "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decodes the parts' charsets
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// The walk's bounds. A message's text is read once and scanned part by
// part; the bounds keep a crafted message from costing more than a large
// ordinary one.
const (
	// maxTextBytes is the most text read from one message, over all its
	// text parts (after transfer decoding).
	maxTextBytes = 8 << 20
	// maxParts is the most MIME entities looked at.
	maxParts = 500
	// maxDepth is the deepest nesting of multiparts and attached
	// messages followed.
	maxDepth = 10
	// maxNested is how deep URLs inside URLs (a redirector's target in
	// its query) are followed.
	maxNested = 3
	// maxURLs bounds the URLs counted in one message, so that a message
	// of nothing but links costs a bounded number of host parses.
	maxURLs = 10000
	// maxSkipped bounds the hosts past the max named in Found.Hosts.
	maxSkipped = 100
	// maxMemo bounds the hosts, as written, whose normal form is kept:
	// a newsletter links to the same few hosts hundreds of times, and
	// IDN mapping and the public suffix search are most of a URL's cost.
	maxMemo = 1000
)

// stopChars end a URL in text: white space, and the characters RFC 3986
// §2 excludes and text puts around URLs (quotes, angle brackets).
const stopChars = " \t\r\n\f\v\"'<>{}|\\^`"

// stops is stopChars as a table: the scan for a URL's end looks at every
// byte of it.
var stops = func() (t [256]bool) {
	for i := range len(stopChars) {
		t[stopChars[i]] = true
	}
	return t
}()

// findURLs returns the URLs of s: those with an http, https or ftp scheme,
// and bare www. names, as mail clients make them links. It is a scan for
// "://" and "www." rather than a regexp: Go's regexp engine runs at a few
// tens of MB/s on such a pattern, a byte search at memory speed. Where
// each pattern is next is kept until the scan passes it, so that text
// with many of one and none of the other is searched once, not once per
// URL.
func findURLs(s string) []string {
	low := asciiLower(s)
	var out []string
	a, w := -2, -2 // the next "://" and "www.", -1 for none, -2 for not searched
	next := func(pat string, at, pos int) int {
		if at == -1 || at >= pos {
			return at
		}
		if i := bytes.Index(low[pos:], []byte(pat)); i >= 0 {
			return pos + i
		}
		return -1
	}
	for pos := 0; pos < len(s); {
		a, w = next("://", a, pos), next("www.", w, pos)
		if a < 0 && w < 0 {
			break
		}
		var start int
		if a >= 0 && (w < 0 || a < w) {
			// The scheme is the letters before "://".
			at := a
			start = at
			for start > 0 && start > at-5 && isLetter(low[start-1]) {
				start--
			}
			if sch := string(low[start:at]); sch != "http" && sch != "https" && sch != "ftp" {
				pos = at + 3
				continue
			}
			if start > 0 && isLetter(low[start-1]) {
				pos = at + 3 // "xhttp://": not a scheme we know
				continue
			}
		} else {
			start = w
			if start > 0 && !strings.ContainsRune(stopChars+"(,;=:", rune(low[start-1])) {
				pos = start + 4 // part of a word or of a URL's path
				continue
			}
		}
		end := start
		for end < len(s) && !stops[s[end]] {
			end++
		}
		out = append(out, s[start:end])
		pos = end
	}
	return out
}

// asciiLower is s with A-Z lowered and every other byte kept, so that
// offsets in it are offsets in s. It is bytes, one copy of s rather than
// the two a string would take: it is made for every chunk of text.
func asciiLower(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' }

// Found is what Extract found in a message.
type Found struct {
	// URLs is the number of URLs seen (nested ones count too), at most
	// maxURLs.
	URLs int
	// Domains are the distinct registered domains (public suffix plus
	// one label, RFC 8499's "registered domain" as DMARC uses it) of the
	// URLs' host names, lower case A-labels, in order of first sight, at
	// most the max given to Extract.
	Domains []string
	// IPs are the distinct addresses of URLs whose host is an address,
	// in order of first sight, at most the same max.
	IPs []netip.Addr
	// Truncated is set when more domains or addresses than the max were
	// seen, or a bound of the walk stopped it: what follows was not
	// looked up.
	Truncated bool
	// Hosts are the distinct domains and addresses in order of first
	// sight, with how many URLs each: those of Domains and IPs, and up to
	// maxSkipped of those past the max, marked Skipped. For display
	// ("mxguard check"); rules read Domains and IPs.
	Hosts []Host
}

// Host is one domain or address of a message's URLs.
type Host struct {
	// Name is the registered domain or the address.
	Name string
	// URLs is how many URLs have it as host.
	URLs int
	// Skipped is set for a host past the max: not looked up.
	Skipped bool
}

// extractor accumulates the URLs of one message.
type extractor struct {
	max      int
	f        Found
	hosts    map[string]int // index in f.Hosts
	memo     map[string]normal
	budget   int64
	entities int
}

// errStop ends the walk at a bound.
var errStop = errors.New("uribl: bound reached")

// Extract reads the message r and returns the URLs of its text/plain and
// text/html parts, with at most max distinct domains and max distinct
// addresses. A message it cannot parse as MIME is scanned as it is:
// malformed mail is where obfuscated links are.
func Extract(ctx context.Context, r io.Reader, max int) (Found, error) {
	x := &extractor{max: max, hosts: map[string]int{}, memo: map[string]normal{}, budget: maxTextBytes}
	err := x.message(ctx, r, 0)
	if errors.Is(err, errStop) {
		x.f.Truncated = true
		err = nil
	}
	return x.f, err
}

// message walks one message (the whole one, or an attached one).
func (x *extractor) message(ctx context.Context, r io.Reader, depth int) error {
	// An unknown charset or encoding still gives the entity, read as it is.
	e, _ := message.ReadWithOptions(r, &message.ReadOptions{MaxHeaderBytes: 1 << 20})
	if e == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		// No header to read: the rest is scanned as text.
		return x.text(r, false)
	}
	return x.entity(ctx, e, depth)
}

// entity walks one MIME entity.
func (x *extractor) entity(ctx context.Context, e *message.Entity, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	x.entities++
	if x.entities > maxParts || depth > maxDepth {
		return errStop
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			child, err := mr.NextPart()
			if err == io.EOF || child == nil {
				return nil
			}
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				// A broken multipart ends the walk here; what was
				// read counts.
				return nil
			}
			if err := x.entity(ctx, child, depth+1); err != nil {
				return err
			}
		}
	}
	typ, _, err := e.Header.ContentType()
	if err != nil || typ == "" {
		// RFC 2045 §5.2: no (or a broken) Content-Type is text/plain.
		typ = "text/plain"
	}
	switch typ {
	case "message/rfc822", "message/global":
		return x.message(ctx, e.Body, depth+1)
	case "text/plain", "text/html", "text/enriched":
		return x.text(e.Body, typ == "text/html")
	}
	return nil
}

// chunk is how much text is read at a time, and maxCarry the most kept
// from one chunk for the next: the text after its last white space, where
// a URL or an entity may go on. A URL longer than that is cut, and its
// host has been read by then.
const (
	chunk    = 64 << 10
	maxCarry = 64 << 10
)

// text scans one text part for URLs, a chunk at a time, so that a large
// part costs one chunk of memory. HTML is scanned with its tags, once its
// character references are undone: href and src targets are URLs found
// like any other, and &#x2e; or &period; in a host name become the dot
// they stand for. Chunks are cut at white space, which neither a URL nor
// a character reference holds.
func (x *extractor) text(r io.Reader, isHTML bool) error {
	buf := make([]byte, 0, chunk+maxCarry)
	for {
		if x.budget <= 0 {
			return errStop
		}
		n, err := io.ReadFull(io.LimitReader(r, min(x.budget, chunk)), buf[len(buf):len(buf)+chunk])
		x.budget -= int64(n)
		buf = buf[:len(buf)+n]
		done := err != nil || x.budget <= 0 // the end, the budget's, or a bad encoding
		cut := len(buf)
		if !done {
			if i := bytes.LastIndexAny(buf, " \t\r\n"); i >= 0 && len(buf)-i <= maxCarry {
				cut = i + 1
			}
		}
		s := string(buf[:cut])
		if isHTML || strings.Contains(s, "&") {
			// Plain text with entities is not HTML, but a mail
			// client showing it as HTML (a wrong Content-Type)
			// would undo them.
			s = html.UnescapeString(s)
		}
		if serr := x.scan(s, 0); serr != nil {
			return serr
		}
		buf = buf[:copy(buf, buf[cut:])]
		if done {
			if x.budget <= 0 {
				return errStop
			}
			// At the end, or a bad transfer encoding: what decoded
			// was scanned.
			return nil
		}
	}
}

// scan finds the URLs of s; nested is how deep in another URL s is.
func (x *extractor) scan(s string, nested int) error {
	for _, m := range findURLs(s) {
		if x.f.URLs >= maxURLs {
			return errStop
		}
		x.f.URLs++
		host, rest := splitURL(m)
		x.add(host)
		if nested < maxNested && rest != "" {
			// A redirector's target is in its path or query, often
			// percent-encoded: https://good.example/r?u=https%3A%2F%2Fbad.example/
			if u, err := url.QueryUnescape(rest); err == nil {
				rest = u
			}
			if err := x.scan(rest, nested+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// add records the host of a URL. A host past the max is not looked up,
// but the walk goes on, so that the URLs are all counted and the hosts
// that were not looked up can be named.
func (x *extractor) add(raw string) {
	n, seen := x.memo[raw]
	if !seen {
		n.key, n.ip, n.ok = normalise(raw)
		// Clones: raw, and key when normalise had nothing to change,
		// are slices of a chunk of text, which they would keep alive.
		n.key = strings.Clone(n.key)
		if len(x.memo) < maxMemo {
			x.memo[strings.Clone(raw)] = n
		}
	}
	if !n.ok {
		return
	}
	key, ip := n.key, n.ip
	if i, seen := x.hosts[key]; seen {
		x.f.Hosts[i].URLs++
		return
	}
	h := Host{Name: key, URLs: 1}
	switch {
	case ip.IsValid() && len(x.f.IPs) < x.max:
		x.f.IPs = append(x.f.IPs, ip)
	case !ip.IsValid() && len(x.f.Domains) < x.max:
		x.f.Domains = append(x.f.Domains, key)
	default:
		x.f.Truncated = true
		if len(x.f.Hosts) >= 2*x.max+maxSkipped {
			return // counted as a URL, not named
		}
		h.Skipped = true
	}
	x.hosts[key] = len(x.f.Hosts)
	x.f.Hosts = append(x.f.Hosts, h)
}

// normal is what normalise returned for a host.
type normal struct {
	key string
	ip  netip.Addr
	ok  bool
}

// splitURL returns the host part of a URL as the regexp found it (still
// encoded) and what follows the authority.
func splitURL(u string) (host, rest string) {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	// The authority ends at the path, query or fragment (RFC 3986 §3.2);
	// browsers take a backslash for a slash (WHATWG URL), and so do we.
	end := strings.IndexAny(u, "/?#\\")
	if end < 0 {
		end = len(u)
	}
	auth, rest := u[:end], u[end:]
	// Percent-decoded first: %40 is an @ to the browser too.
	if d, err := url.PathUnescape(auth); err == nil {
		auth = d
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:] // user:password@ is not the host
	}
	if cut := strings.IndexAny(auth, "/?#\\"); cut >= 0 {
		auth = auth[:cut]
	}
	return auth, rest
}

// normalise turns a URL's host (with its port, if any) into what is
// looked up: the registered domain of a name, lower case A-labels
// (RFC 5891 via UTS #46, as browsers map names), or an address. ok is
// false for what is neither.
func normalise(host string) (key string, ip netip.Addr, ok bool) {
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host[1:end])
		if err != nil {
			return "", netip.Addr{}, false
		}
		a = a.WithZone("").Unmap()
		return a.String(), a, true
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	// Text around a URL: "see www.example.com." or "(http://x.example)".
	host = strings.TrimRight(host, ".,;:!)]'\"")
	if host == "" {
		return "", netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return a.String(), a, true
	}
	name, err := idna.Lookup.ToASCII(host)
	if err != nil || name == "" {
		return "", netip.Addr{}, false
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if endsInNumber(name) {
		// 3232235777, 0xC0A80101, 0300.0250.1.1, 192.168.257 and
		// fullwidth digits all go to 192.168.1.1 in a browser; a host
		// that ends in a number and is no address is no host at all.
		a, ok := parseIPv4(name)
		if !ok {
			return "", netip.Addr{}, false
		}
		return a.String(), a, true
	}
	if !strings.Contains(name, ".") {
		return "", netip.Addr{}, false
	}
	reg, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		// The name is itself a public suffix (co.uk): nothing registered.
		return "", netip.Addr{}, false
	}
	return reg, netip.Addr{}, true
}
