package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/dmarc"
	"mxguard/policy"
)

// TestDMARCPctSampled sends mail that fails DMARC for p=reject domains
// with pct=0 and pct=50 through mxguard serve with the default rules: what
// falls outside the sample is quarantined (delivered, marked) instead of
// refused (RFC 7489 §6.6.4). "mxguard rules replay" on the verdict log,
// also on lines without the new facts, and "mxguard check" on the same
// messages reach the same actions.
func TestDMARCPctSampled(t *testing.T) {
	h := startAuth(t)
	var in50, out50 string
	for i := 0; in50 == "" || out50 == ""; i++ {
		id := fmt.Sprintf("%d.pay@pct50.test", i)
		if dmarc.Sample(50, "pct50.test", id) {
			in50 = id
		} else {
			out50 = id
		}
	}
	const refused = "550 5.7.1 message refused: the DMARC policy of the From domain says reject"
	msgs := []struct {
		from, msgID, reply, action, applied string
	}{
		{"pct0.test", "1.pay@pct0.test", "250 2.0.0 Ok: queued", "quarantine", "quarantine"},
		{"pct50.test", in50, refused, "reject", "reject"},
		{"pct50.test", out50, "250 2.0.0 Ok: queued", "quarantine", "quarantine"},
	}
	dir := t.TempDir()
	body := func(from, msgID string) string {
		return "From: ceo@" + from + "\r\nTo: user@example.org\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + msgID +
			">\r\nSubject: pay\r\n\r\nwire it\r\n"
	}
	for _, m := range msgs {
		h.send(t, "ceo@"+m.from, body(m.from, m.msgID), m.reply)
	}
	got := h.stored(t)
	if len(got) != 2 {
		t.Fatalf("backend holds %d messages, want the 2 quarantined:\n%s", len(got), strings.Join(got, "\n----\n"))
	}
	for _, g := range got {
		if !strings.Contains(g, "X-Mxguard-Quarantine: yes") || !strings.Contains(g, "dmarc=fail header.from=") {
			t.Errorf("delivered message not marked for quarantine:\n%s", g)
		}
	}

	recs := waitVerdicts(t, h.vlog, len(msgs))
	for i, m := range msgs {
		d := recs[i].Facts.DMARC
		if recs[i].Action != m.action || recs[i].MessageID != m.msgID || d.Policy != "reject" || d.AppliedPolicy != m.applied ||
			d.Sampled != (m.applied == "reject") {
			t.Errorf("verdict %d: action %s, message_id %q, dmarc %+v; want %s, applied_policy %s", i, recs[i].Action, recs[i].MessageID, d, m.action, m.applied)
		}
	}

	replay := func(log string, rules ...string) string {
		t.Helper()
		out, err := exec.Command(binary, append([]string{"rules", "replay", "--log", log}, rules...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := replay(h.vlog, "../../rules/default.yaml"); !strings.HasPrefix(out, "3 transactions replayed with ../../rules/default.yaml: 0 would change\n") {
		t.Errorf("replay with the default rules:\n%s", out)
	}
	// A line written before applied_policy existed is sampled again from
	// its message_id and from.domain.
	var old []string
	data, _ := os.ReadFile(h.vlog)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatal(err)
		}
		dm := raw["facts"].(map[string]any)["dmarc"].(map[string]any)
		delete(dm, "applied_policy")
		delete(dm, "sampled")
		b, _ := json.Marshal(raw)
		old = append(old, string(b))
	}
	oldLog := filepath.Join(dir, "old.jsonl")
	os.WriteFile(oldLog, []byte(strings.Join(old, "\n")+"\n"), 0o600)
	if out := replay(oldLog, "../../rules/default.yaml"); !strings.HasPrefix(out, "3 transactions replayed with ../../rules/default.yaml: 0 would change\n") {
		t.Errorf("replay of lines without applied_policy:\n%s", out)
	}
	// dmarc.policy keeps its meaning: a rule on it refuses what pct spared.
	all := filepath.Join(dir, "all.yaml")
	os.WriteFile(all, []byte("rules:\n  - name: dmarc-reject-all\n    stage: data\n    when: dmarc.result == \"fail\" && dmarc.policy == \"reject\"\n    action: reject\n"), 0o600)
	if out := replay(h.vlog, all); !strings.Contains(out, ": 2 would change\n") || !strings.Contains(out, "quarantine → reject: 2") {
		t.Errorf("replay with a rule on dmarc.policy:\n%s", out)
	}

	// mxguard check, with the same DNS, decides each message as serve did.
	cfg := filepath.Join(dir, "check.yaml")
	os.WriteFile(cfg, []byte("hostname: mx.example.org\nlisten: [{address: 127.0.0.1:2525}]\nbackend: {address: \"builtin:"+dir+"/mail\"}\n"+
		"domains: [example.org]\ndns: {servers: ["+h.dns.Addr()+"], timeout: 500ms}\n"), 0o600)
	for _, m := range msgs {
		eml := filepath.Join(dir, "m.eml")
		os.WriteFile(eml, []byte(body(m.from, m.msgID)), 0o600)
		var out, errb strings.Builder
		code := run([]string{"check", "--config", cfg, "--json", "--client-ip", "127.0.0.1", "--helo", "client.sender.test",
			"--mail-from", "ceo@" + m.from, "--rcpt", "user@example.org", eml}, &out, &errb)
		var rec policy.Record
		if code != 0 || json.Unmarshal([]byte(out.String()), &rec) != nil {
			t.Fatalf("check: exit %d, output %q, stderr %q", code, out.String(), errb.String())
		}
		if rec.Action != m.action || rec.Facts.DMARC.AppliedPolicy != m.applied {
			t.Errorf("check of %s: %s, dmarc %+v; want %s", m.msgID, rec.Action, rec.Facts.DMARC, m.action)
		}
	}
}
