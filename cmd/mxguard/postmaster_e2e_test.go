package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestPostmasterAccepted: RFC 5321 §4.5.1 says <Postmaster> with no domain
// is always accepted, in any case. mxguard forwards it as an address the
// backend takes: postmaster@ the first of its domains, or the configured
// postmaster address.
func TestPostmasterAccepted(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{"", "postmaster@example.org"},
		{"postmaster: abuse-desk@example.org\n", "abuse-desk@example.org"},
	} {
		listen, dir := sinkMxguard(t, c.config)
		for _, r := range []string{"<Postmaster>", "<POSTMASTER>", "<postmaster>"} {
			v := openTx(t, "", listen)
			v.say("RCPT TO:"+r, "250 ")
			v.data("From: alice@sender.test\r\nSubject: to the postmaster\r\n\r\nhello\r\n", "250 ")
			m, _ := delivered(t, dir)
			want := fmt.Sprint([]string{"user@example.org", c.want})
			if got := fmt.Sprint(m.Header["Delivered-To"]); got != want {
				t.Errorf("config %q, RCPT TO:%s: the backend got recipients %s, want %s", c.config, r, got, want)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
			for _, f := range files {
				os.Remove(f)
			}
		}
	}
}
