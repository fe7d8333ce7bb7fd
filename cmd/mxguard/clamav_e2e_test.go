package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mxguard/checks/resolver/dnstest"
	"mxguard/internal/testclamd"
)

// clamavMessage is a message from alice@sender.test with a text part and
// the given attachments (name, content), base64 as mail carries them.
func clamavMessage(id, text string, attachments ...[2][]byte) string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@sender.test>\r\nTo: user@example.org\r\nSubject: files\r\n" +
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@sender.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n")
	for _, a := range attachments {
		b.WriteString("--=_b1\r\nContent-Type: application/octet-stream; name=\"" + string(a[0]) + "\"\r\n" +
			"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" + string(a[0]) + "\"\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(a[1])
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--=_b1--\r\n")
	return b.String()
}

// zipped is a zip archive holding one file.
func zipped(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err == nil {
		_, err = w.Write(content)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Malware through serve, with the default rules and a real clamd: EICAR
// as the text of a message, attached, zipped and zipped twice, and a
// signature of the test's own, are refused with 554 5.7.1 naming the
// signature; a clean message with attachments is delivered byte for byte.
// The verdict log has clamd's answer.
func TestClamAVThroughServe(t *testing.T) {
	clamd := testclamd.Shared(t)
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+"\nclamav:\n  address: "+clamd.Address()+"\n")
	eicar := testclamd.EICAR()
	refused := []struct {
		name, msg, sig string
	}{
		{"eicar plain", "From: alice@sender.test\r\nTo: user@example.org\r\nSubject: t\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n" +
			"Message-ID: <plain@sender.test>\r\n\r\n" + string(eicar) + "\r\n", testclamd.EICARName},
		{"eicar zipped", clamavMessage("zip1", "see attached", [2][]byte{[]byte("invoice.zip"), zipped(t, "eicar.com", eicar)}), testclamd.EICARName},
		{"eicar zipped twice", clamavMessage("zip2", "see attached",
			[2][]byte{[]byte("invoice.zip"), zipped(t, "inner.zip", zipped(t, "eicar.com", eicar))}), testclamd.EICARName},
		{"own signature", clamavMessage("own", "see attached", [2][]byte{[]byte("notes.txt"), []byte("x " + testclamd.TestString + " y")}), testclamd.TestName},
	}
	for _, c := range refused {
		conn := openTx(t, "127.0.0.1", listen)
		got := conn.data(c.msg, "554 5.7.1 ")
		if !strings.Contains(got, "malware found: "+c.sig) {
			t.Errorf("%s: reply %q does not name %s", c.name, got, c.sig)
		}
		conn.say("QUIT", "221 ")
	}
	clean := clamavMessage("clean", "the report, and the data",
		[2][]byte{[]byte("report.zip"), zipped(t, "report.txt", bytes.Repeat([]byte("all fine\n"), 1000))},
		[2][]byte{[]byte("data.bin"), bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 3000)})
	conn := openTx(t, "127.0.0.1", listen)
	conn.data(clean, "250 ")
	conn.say("QUIT", "221 ")

	recs := waitVerdicts(t, vlog, len(refused)+1)
	for i, c := range refused {
		if r := recs[i]; r.Reason != "malware" || r.Checks["clamav"].Result != "infected" || !strings.Contains(r.Checks["clamav"].Detail, c.sig) {
			t.Errorf("%s: logged as %s by %s, clamav %+v", c.name, r.Action, r.Reason, r.Checks["clamav"])
		}
	}
	if r := recs[len(refused)]; r.Action != "accept" || r.Checks["clamav"].Result != "clean" {
		t.Errorf("clean message logged as %s by %s, clamav %+v", r.Action, r.Reason, r.Checks["clamav"])
	}
	// Replay decides from the logged facts, without clamd: nothing
	// would change.
	out, err := exec.Command(binary, "rules", "replay", "--log", vlog, "../../rules/default.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 would change") {
		t.Errorf("replay: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("the sink holds %d messages, want the clean one", len(files))
	}
	stored, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// The sink and mxguard add header fields above the message: the
	// message itself follows, unchanged.
	if !bytes.HasSuffix(stored, []byte(clean)) {
		t.Errorf("the clean message was not delivered byte for byte:\n%.3000s", stored)
	}
}

// clamd goes away: the message is held with 451 (the default rules'
// check-temperror), never passed unscanned; once clamd is back, the same
// message is delivered.
func TestClamAVDownTempfails(t *testing.T) {
	clamd := testclamd.Start(t, testclamd.Options{})
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+"\nclamav:\n  address: "+clamd.Address()+"\n")
	msg := clamavMessage("retry", "hello", [2][]byte{[]byte("a.txt"), []byte("fine")})

	clamd.Stop()
	conn := openTx(t, "127.0.0.1", listen)
	conn.data(msg, "451 4.7.5 ")
	conn.say("QUIT", "221 ")
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 0 {
		t.Fatalf("a message was delivered while clamd was down")
	}

	clamd.Restart(t)
	conn = openTx(t, "127.0.0.1", listen)
	conn.data(msg, "250 ")
	conn.say("QUIT", "221 ")

	recs := waitVerdicts(t, vlog, 2)
	if r := recs[0]; r.Reason != "check-temperror" || r.Checks["clamav"].Result != "temperror" || !strings.Contains(r.Checks["clamav"].Detail, clamd.Socket) {
		t.Errorf("clamd down: logged as %s by %s, clamav %+v", r.Action, r.Reason, r.Checks["clamav"])
	}
	if r := recs[1]; r.Action != "accept" || r.Checks["clamav"].Result != "clean" {
		t.Errorf("clamd back: logged as %s by %s, clamav %+v", r.Action, r.Reason, r.Checks["clamav"])
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 1 {
		t.Errorf("the sink holds %d messages, want 1", len(files))
	}
}

// "mxguard check" with a config that names clamd shows clamd's answer
// among the checks, and the verdict serve would give.
func TestCheckShowsClamAV(t *testing.T) {
	clamd := testclamd.Shared(t)
	dns := dnstest.StartFiles(t, corpusPath("zones/e2e.zone"))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mxguard.yaml")
	if err := os.WriteFile(cfg, []byte(`hostname: mx.example.org
listen:
  - address: 127.0.0.1:2525
backend:
  address: 127.0.0.1:2526
domains: [example.org]
dns:
  servers: [`+dns.Addr()+`]
clamav:
  address: `+clamd.TCPAddr+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(dir, "m.eml")
	msg := clamavMessage("check", "see attached", [2][]byte{[]byte("invoice.zip"), zipped(t, "eicar.com", testclamd.EICAR())})
	if err := os.WriteFile(eml, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := runBinary(t, "check", "--config", cfg, "--client-ip", "127.0.0.1", "--helo", "c.sender.test",
		"--mail-from", "alice@sender.test", "--rcpt", "user@example.org", eml)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errb)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "clamav ") {
			line = l
		}
	}
	if !strings.Contains(line, "infected") || !strings.Contains(line, "found "+testclamd.EICARName) {
		t.Errorf("check does not show clamd's answer (a line for clamav, infected, found %s):\n%s", testclamd.EICARName, out)
	}
	if !strings.Contains(out, "final: reject at data (malware): 554 5.7.1 message refused: malware found: "+testclamd.EICARName) {
		t.Errorf("check's verdict is not the malware refusal:\n%s", out)
	}
}

// A site that chooses to fail open, as docs/rules.md shows (clamav left out
// of check-temperror, a tag rule for the trace), gets mail delivered,
// tagged, while clamd is away; malware is still refused once it is back.
func TestClamAVFailOpenSiteRules(t *testing.T) {
	clamd := testclamd.Start(t, testclamd.Options{})
	code, def, errb := runBinary(t, "rules", "default")
	if code != 0 {
		t.Fatalf("rules default: exit %d: %s", code, errb)
	}
	const temperror = `when: any(temperrors, {# not in ["spf", "dkim", "rdns"]})`
	if !strings.Contains(def, temperror) {
		t.Fatalf("the default set's check-temperror changed: update docs/rules.md (Failing open) and this test")
	}
	site := strings.Replace(def, temperror, `when: any(temperrors, {# not in ["spf", "dkim", "rdns", "clamav"]})`, 1)
	site = strings.Replace(site, "\n  - name: check-temperror", `
  # Mail that clamd could not scan is delivered, marked.
  - name: clamav-unscanned
    stage: data
    when: '"clamav" in temperrors'
    action: tag
    headers:
      X-Mxguard-Unscanned: clamav

  # Checks that could not finish, but for clamav.
  - name: check-temperror`, 1)
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, dir := sinkMxguard(t, "rules: ["+rulesFile+"]\nclamav:\n  address: "+clamd.TCPAddr+"\n")

	clamd.Stop()
	msg := clamavMessage("open", "hello", [2][]byte{[]byte("a.txt"), []byte("fine")})
	conn := openTx(t, "127.0.0.1", listen)
	conn.data(msg, "250 ")
	conn.say("QUIT", "221 ")
	msgs, _ := storedMessages(t, dir)
	if len(msgs) != 1 || msgs[0].Header.Get("X-Mxguard-Unscanned") != "clamav" {
		t.Fatalf("clamd down, failing open: %d messages delivered, want 1 with X-Mxguard-Unscanned: clamav", len(msgs))
	}

	clamd.Restart(t)
	conn = openTx(t, "127.0.0.1", listen)
	conn.data(clamavMessage("open2", "x", [2][]byte{[]byte("e.com"), testclamd.EICAR()}), "554 5.7.1 ")
	conn.say("QUIT", "221 ")
}

// clamd has no command that reports its StreamMaxLength: "mxguard config
// check" asks it the only way it answers, with a stream of
// limits.max_message_bytes, and fails (exit 2) when clamd refuses it, since
// every message that large would be held with 451. A clamd that does not
// answer is a warning: it may be restarting.
func TestConfigCheckProbesClamd(t *testing.T) {
	clamd := testclamd.Start(t, testclamd.Options{StreamMaxLength: "1M"})
	cfg := func(size string) string {
		return configDir(t, "hostname: mx.example.org\nlisten:\n  - address: 127.0.0.1:2525\nbackend:\n  address: 127.0.0.1:2526\n"+
			"domains: [example.org]\nlimits:\n  max_message_bytes: "+size+"\nclamav:\n  address: "+clamd.Address()+"\n", "rules: []\n")
	}
	big := cfg("2MiB")
	code, out, errb := runBinary(t, "config", "check", "--config", big)
	if code != exitUsage || !strings.Contains(errb, "StreamMaxLength") || !strings.Contains(errb, "2MiB") {
		t.Errorf("clamd's StreamMaxLength below limits.max_message_bytes: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	small := cfg("512KiB")
	code, out, errb = runBinary(t, "config", "check", "--config", small)
	if code != exitOK || !strings.Contains(out, "clamav: clamd at "+clamd.Address()+" (ClamAV ") || !strings.Contains(out, "takes a stream of 512KiB") || errb != "" {
		t.Errorf("clamd's StreamMaxLength above limits.max_message_bytes: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	clamd.Stop()
	code, out, errb = runBinary(t, "config", "check", "--config", small)
	if code != exitOK || !strings.Contains(errb, "warning: clamav: clamd at "+clamd.Address()+" does not answer") || !strings.Contains(out, ": ok: ") {
		t.Errorf("clamd down: exit %d, stdout %q, stderr %q", code, out, errb)
	}
}

// A clamd that takes the stream and never answers holds the message only
// for clamav.timeout: 451, never a pass, and the verdict log says the scan
// ran out of time.
func TestClamAVTimeoutTempfails(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // reads all, answers nothing
		}
	}()
	vlog := filepath.Join(t.TempDir(), "verdicts.jsonl")
	listen, dir := sinkMxguard(t, "verdict_log: "+vlog+"\nclamav:\n  address: "+l.Addr().String()+"\n  timeout: 700ms\n")
	conn := openTx(t, "127.0.0.1", listen)
	conn.data(clamavMessage("slow", "hello"), "451 4.7.5 ")
	conn.say("QUIT", "221 ")
	r := waitVerdicts(t, vlog, 1)[0]
	if c := r.Checks["clamav"]; c.Result != "temperror" || !strings.Contains(c.Detail, "no answer within 700ms") {
		t.Errorf("a silent clamd: logged as %s by %s, clamav %+v", r.Action, r.Reason, c)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.eml")); len(files) != 0 {
		t.Error("a message was delivered unscanned")
	}
}
