package proxy

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"mxguard/policy"
)

// TestVerdictLineQuotesTheReplySent: the verdict line's reply is the reply
// the client got, byte for byte, session id included, whatever refused:
// a client that does not speak SMTP, a message over the size limit.
func TestVerdictLineQuotesTheReplySent(t *testing.T) {
	for _, c := range []struct {
		name   string
		dialog func(d *dialog) string
	}{
		{"non-smtp", func(d *dialog) string {
			d.expect("", "220 ")
			return d.expect("GET / HTTP/1.0", "554 5.5.1 ")
		}},
		{"size", func(d *dialog) string {
			d.expect("", "220 ")
			d.expect("EHLO client.test", "250 ")
			d.expect("MAIL FROM:<a@sender.test>", "250 ")
			d.expect("RCPT TO:<user@example.org>", "250 ")
			d.send("BDAT 2000 LAST\r\n" + string(make([]byte, 2000)))
			return d.expect("", "552 5.3.4 ")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdicts.jsonl")
			vl, err := policy.OpenVerdictLog(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { vl.Close() })
			be := startBackend(t, nil)
			px := startProxy(t, be.addr, func(o *Options, _ *BackendOptions) {
				o.MaxMessageBytes = 1000
				o.Policy = policy.NewEngine(policy.Options{Domains: []string{"example.org"}, Log: vl})
			})
			sent := c.dialog(dial(t, px.addr))
			var rec policy.Record
			waitFor(t, "the verdict line", func() bool {
				f, err := os.Open(path)
				if err != nil {
					return false
				}
				defer f.Close()
				sc := bufio.NewScanner(f)
				return sc.Scan() && json.Unmarshal(sc.Bytes(), &rec) == nil
			})
			if rec.Reply != sent {
				t.Errorf("verdict line reply %q, client got %q", rec.Reply, sent)
			}
		})
	}
}
