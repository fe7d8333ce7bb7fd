package rspamd

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/internal/testrspamd"
)

// The package's tests share one real rspamd (testrspamd).
func TestMain(m *testing.M) {
	code := m.Run()
	testrspamd.StopShared()
	os.Exit(code)
}

// msg is a small message with the subject given.
func msg(subject string) []byte {
	return []byte("From: Alice <alice@sender.test>\r\nTo: user@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@sender.test>\r\n\r\nHello, see you tomorrow.\r\n")
}

// view is the transaction the tests scan: its envelope in full.
func view(message []byte) checktest.View {
	return checktest.View{ClientIP: netip.MustParseAddr("192.0.2.7"), HELOName: "mail.sender.test",
		PTR: "mail.sender.test", Sender: testrspamd.FromWant, Recipients: []string{"user@example.org", "other@example.org"},
		ID: "Q7TEST.1", Message: message}
}

// run builds the check for url and runs it on v under a deadline of d.
func run(t *testing.T, url string, d time.Duration, v check.View) check.Result {
	t.Helper()
	def := Facts{}.Define(check.Env{Section: Config{URL: url}})
	if def.Run == nil || def.Stage != check.Data {
		t.Fatalf("the check is not built for %s: %+v", url, def)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return def.Run(ctx, v)
}

// What a real rspamd answers, read into facts: a clean message, and one
// per action the test symbols choose.
func TestScanWithRspamd(t *testing.T) {
	s := testrspamd.Shared(t)
	cases := []struct {
		name, subject, action string
		score                 float64
		symbols               []string
	}{
		{"clean", "lunch tomorrow", NoAction, 0, nil},
		{"reject", "offer " + testrspamd.RejectMarker, Reject, testrspamd.RejectScore, []string{testrspamd.RejectSymbol}},
		{"add header", "offer " + testrspamd.SpamMarker, AddHeader, testrspamd.SpamScore, []string{testrspamd.SpamSymbol}},
		{"rewrite subject", "offer " + testrspamd.RewriteMarker, RewriteSubject, testrspamd.RewriteScore, []string{testrspamd.RewriteSymbol}},
		{"soft reject", "offer " + testrspamd.SoftMarker, SoftReject, 0, []string{testrspamd.SoftSymbol}},
		// rspamd stops once its action is certain (no "Pass: all"), so
		// these do not reach reject.
		{"several symbols, sorted", testrspamd.SpamMarker + " " + testrspamd.EnvelopeMarker, AddHeader,
			testrspamd.SpamScore, slices.Sorted(slices.Values(append([]string{testrspamd.SpamSymbol}, testrspamd.EnvelopeSymbols...)))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, s.URL(), 10*time.Second, view(msg(c.subject)))
			f, _ := res.Facts.(Facts)
			want := Facts{Score: c.score, Required: testrspamd.Required, Action: c.action, Symbols: c.symbols}
			if res.Result != Scanned || f.Score != want.Score || f.Required != want.Required || f.Action != want.Action ||
				!slices.Equal(f.Symbols, want.Symbols) {
				t.Fatalf("got %s %q %+v\nwant scanned %+v\n%s", res.Result, res.Detail, f, want, s.Logs())
			}
			if !strings.HasPrefix(res.Detail, c.action+", score ") {
				t.Errorf("detail %q does not start with the action and score", res.Detail)
			}
		})
	}
}

// rspamd is told the whole envelope: the client's IP, HELO, host name,
// sender, both recipients and the transaction id (each test symbol fires
// when rspamd knows one). Without a known PTR, no host name is sent.
func TestEnvelopeHeaders(t *testing.T) {
	s := testrspamd.Shared(t)
	v := view(msg("hello " + testrspamd.EnvelopeMarker))
	res := run(t, s.URL(), 10*time.Second, v)
	f, _ := res.Facts.(Facts)
	if !slices.Equal(f.Symbols, testrspamd.EnvelopeSymbols) {
		t.Errorf("symbols %v, want %v (one per envelope part rspamd knows)\n%s", f.Symbols, testrspamd.EnvelopeSymbols, s.Logs())
	}
	v.PTR = ""
	res = run(t, s.URL(), 10*time.Second, v)
	f, _ = res.Facts.(Facts)
	if slices.Contains(f.Symbols, "MXGUARD_ENV_HOSTNAME") || !slices.Contains(f.Symbols, "MXGUARD_ENV_HELO") {
		t.Errorf("without a PTR: symbols %v, want MXGUARD_ENV_HELO but no MXGUARD_ENV_HOSTNAME", f.Symbols)
	}
}

// A large message goes as a stream (chunked) and is scanned whole: a
// marker at its very end is found.
func TestLargeMessage(t *testing.T) {
	s := testrspamd.Shared(t)
	m := append(msg("big"), bytes.Repeat([]byte("nothing to see here, just a long report line\r\n"), 100_000)...)
	m = bytes.Replace(m, []byte("Subject: big"), []byte("Subject: big "+testrspamd.RejectMarker), 1)
	res := run(t, s.URL(), 30*time.Second, view(m))
	if f, _ := res.Facts.(Facts); res.Result != Scanned || f.Action != Reject {
		t.Fatalf("a %d-byte message: %s %q %+v", len(m), res.Result, res.Detail, f)
	}
}

// No rspamd where the URL points: temperror, naming the URL, never a
// verdict.
func TestNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	res := run(t, url, 5*time.Second, view(msg("hello")))
	if f, _ := res.Facts.(Facts); res.Result != check.Temperror || !strings.Contains(res.Detail, url) || f.Action != "" || f.Symbols != nil {
		t.Errorf("got %s %q %+v, want temperror naming %s", res.Result, res.Detail, res.Facts, url)
	}
}

// A peer that takes the request and never answers: the scan ends at its
// deadline, as temperror that says so.
func TestNoAnswerInTime(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	res := run(t, "http://"+l.Addr().String(), 300*time.Millisecond, view(msg("hello")))
	if res.Result != check.Temperror || !strings.Contains(res.Detail, "no answer within") {
		t.Errorf("got %s %q, want temperror: no answer within", res.Result, res.Detail)
	}
}

// Without a URL the check is not built: it never runs.
func TestOffWithoutURL(t *testing.T) {
	if d := (Facts{}).Define(check.Env{Section: Config{}}); d.Run != nil {
		t.Errorf("a check without rspamd.url runs")
	}
	if d := (Facts{}).Define(check.Env{}); d.Run != nil {
		t.Errorf("a check without a section runs")
	}
}
