// Package mailhdr finds where a message's header section ends, the one rule
// that the policy engine (which reads the header from the spool) and the
// DKIM prefetcher (which reads it as it arrives) must agree on.
package mailhdr

import "bytes"

// End finds the first empty line of data, a line that is nothing but CR
// and LF characters (RFC 5322 §2.1: it ends the header section), and
// returns where it starts. *pos is where to resume: the start of the first
// line not yet known to be a header line; End advances it, so a caller
// whose data grows can call again without rescanning. A last line without
// LF is not judged yet.
func End(data []byte, pos *int) (int, bool) {
	for {
		i := bytes.IndexByte(data[*pos:], '\n')
		if i < 0 {
			return 0, false
		}
		line := data[*pos : *pos+i+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return *pos, true
		}
		*pos += i + 1
	}
}
