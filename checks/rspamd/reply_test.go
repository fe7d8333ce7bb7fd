package rspamd

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mxguard/checks/check"
)

// Replies a real rspamd does not give, read by ParseReply: every one that
// is not a verdict is an error (the check's temperror), and what is read
// is bounded and printable. Fields mxguard does not read are ignored.
func TestParseReply(t *testing.T) {
	many := `{"score":1,"action":"no action","symbols":{`
	for i := range 300 {
		many += fmt.Sprintf(`"S%03d":{},`, 299-i)
	}
	many = strings.TrimSuffix(many, ",") + "}}"
	cases := []struct {
		name, raw string
		want      Reply
		err       string
	}{
		{"real shape", `{"is_skipped":false,"score":7.25,"required_score":15.0,"action":"add header",` +
			`"symbols":{"B":{"name":"B","score":7.25},"A":{"name":"A","score":0}},"messages":{},"message-id":"x","time_real":0.1}`,
			Reply{Score: 7.25, Required: 15, Action: AddHeader, Symbols: []string{"A", "B"}}, ""},
		{"unknown fields", `{"score":0,"action":"no action","milter":{"add_headers":{"X":"y"}},"new_field":[1,2,{}]}`,
			Reply{Action: NoAction}, ""},
		{"no required score", `{"score":3,"action":"greylist"}`, Reply{Score: 3, Action: Greylist}, ""},
		{"symbols with control characters", `{"score":1,"action":"no action","symbols":{"A\r\nX-Evil: 1":{},"\u0000":{},"B\u0007":{}}}`,
			Reply{Score: 1, Action: NoAction, Symbols: []string{"AX-Evil: 1", "B"}}, ""},
		{"action with a line break", `{"score":1,"action":"reject\r\n250 ok"}`, Reply{Score: 1, Action: "reject250 ok"}, ""},
		{"not JSON", `<html>502 Bad Gateway</html>`, Reply{}, "not rspamd's JSON"},
		{"truncated", `{"score":1,"action":"rej`, Reply{}, "not rspamd's JSON"},
		{"empty", ``, Reply{}, "not rspamd's JSON"},
		{"null", `null`, Reply{}, "without an action"},
		{"an array", `[1,2]`, Reply{}, "not rspamd's JSON"},
		{"no action", `{"score":1,"required_score":15}`, Reply{}, "without an action"},
		{"empty action", `{"score":1,"action":""}`, Reply{}, "without an action"},
		{"no score", `{"action":"reject"}`, Reply{}, "without a score"},
		{"score as a string", `{"score":"NaN","action":"reject"}`, Reply{}, "not rspamd's JSON"},
		{"score nan literal", `{"score":nan,"action":"reject"}`, Reply{}, "not rspamd's JSON"},
		{"score beyond float64", `{"score":1e400,"action":"reject"}`, Reply{}, "not rspamd's JSON"},
		{"required beyond float64", `{"score":1,"required_score":-1e999,"action":"reject"}`, Reply{}, "not rspamd's JSON"},
		{"symbols not an object", `{"score":1,"action":"reject","symbols":["A"]}`, Reply{}, "not rspamd's JSON"},
		{"action not a string", `{"score":1,"action":5}`, Reply{}, "not rspamd's JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseReply([]byte(c.raw))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, c.err)
				}
				return
			}
			if err != nil || got.Score != c.want.Score || got.Required != c.want.Required || got.Action != c.want.Action ||
				!slices.Equal(got.Symbols, c.want.Symbols) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
	got, err := ParseReply([]byte(many))
	if err != nil || len(got.Symbols) != MaxSymbols || got.Symbols[0] != "S000" || got.Symbols[MaxSymbols-1] != "S099" {
		t.Errorf("300 symbols: got %d (%v…), %v; want the first %d, sorted", len(got.Symbols), got.Symbols[:min(3, len(got.Symbols))], err, MaxSymbols)
	}
}

// What an HTTP server that is not (or no longer behaves as) rspamd sends:
// an error status, a body past MaxReplyBytes, a connection cut mid-reply.
// Each is the check's temperror, never a verdict. A real rspamd cannot be
// made to send these, so an in-test server does; every answer a real
// rspamd gives is tested against the real one (rspamd_test.go).
func TestHostileServer(t *testing.T) {
	huge := bytes.Repeat([]byte(" "), MaxReplyBytes)
	cases := []struct {
		name   string
		handle http.HandlerFunc
		detail string
	}{
		{"status 500", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "{\"error\":\"cannot parse\r\nmessage\"}")
		}, `HTTP status 500: {"error":"cannot parsemessage"}`},
		{"status 404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "HTTP status 404"},
		{"a body past the bound", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"score":1,"action":"no action"}`))
			w.Write(huge)
		}, fmt.Sprintf("longer than %d bytes", MaxReplyBytes)},
		{"cut mid-reply", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(`{"score":1,`))
		}, "reading the reply"},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("pong\r\n")) }, "not rspamd's JSON"},
		{"no action", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"score":99}`)) }, "without an action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/checkv2" || r.Method != http.MethodPost {
					http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusTeapot)
					return
				}
				c.handle(w, r)
			}))
			defer srv.Close()
			res := run(t, srv.URL, 10*time.Second, view(msg("hello")))
			if f, _ := res.Facts.(Facts); res.Result != check.Temperror || !strings.Contains(res.Detail, c.detail) || f.Action != "" {
				t.Errorf("got %s %q %+v, want temperror with %q", res.Result, res.Detail, res.Facts, c.detail)
			}
		})
	}
}

// What the server receives: a POST to /checkv2 with the message as sent,
// byte for byte, chunked (streamed, not sized by a copy), and the
// envelope headers, with the null sender as <> and control characters of
// a client's HELO dropped.
func TestRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body = must(t, r)
		w.Write([]byte(`{"score":0,"required_score":15,"action":"no action"}`))
	}))
	defer srv.Close()
	v := view(msg("hello"))
	v.Sender, v.HELOName = "", "evil\r\nX-Injected: 1"
	res := run(t, srv.URL+"/", 10*time.Second, v)
	if res.Result != Scanned {
		t.Fatalf("got %s %q", res.Result, res.Detail)
	}
	h := got.Header
	if got.Method != http.MethodPost || got.URL.Path != "/checkv2" || !slices.Equal(got.TransferEncoding, []string{"chunked"}) {
		t.Errorf("request %s %s %v, want POST /checkv2 chunked", got.Method, got.URL.Path, got.TransferEncoding)
	}
	if !bytes.Equal(body, v.Message) {
		t.Errorf("body %q, want the message %q", body, v.Message)
	}
	want := map[string][]string{"Ip": {"192.0.2.7"}, "Helo": {"evilX-Injected: 1"}, "Hostname": {"mail.sender.test"},
		"From": {"<>"}, "Rcpt": {"user@example.org", "other@example.org"}, "Queue-Id": {"Q7TEST.1"}}
	for k, v := range want {
		if !slices.Equal(h.Values(k), v) {
			t.Errorf("header %s: %q, want %q", k, h.Values(k), v)
		}
	}
	if h.Get("Pass") != "" || h.Get("X-Injected") != "" {
		t.Errorf("unwanted headers: %v", h)
	}
}

func must(t *testing.T, r *http.Request) []byte {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r.Body); err != nil {
		t.Error(err)
	}
	return b.Bytes()
}

// ParseReply never panics, and what it returns is bounded, sorted,
// printable and finite whatever it reads.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		`{"is_skipped":false,"score":20.5,"required_score":15.0,"action":"reject","symbols":{"MXGUARD_TEST_REJECT":{"name":"MXGUARD_TEST_REJECT","score":20.5}},"messages":{}}`,
		`{"score":0,"action":"no action"}`, `{"score":1e308,"action":"x","symbols":{"\u202e":{}}}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := ParseReply(raw)
		if err != nil {
			return
		}
		if math.IsNaN(rep.Score) || math.IsInf(rep.Score, 0) || math.IsNaN(rep.Required) || math.IsInf(rep.Required, 0) {
			t.Fatalf("a score that is not finite: %+v", rep)
		}
		if rep.Action == "" || len(rep.Action) > 64 || len(rep.Symbols) > MaxSymbols || !slices.IsSorted(rep.Symbols) {
			t.Fatalf("unbounded or unsorted: %+v", rep)
		}
		for _, s := range append([]string{rep.Action}, rep.Symbols...) {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(s) > maxSymbolBytes {
				t.Fatalf("a value that is not printable: %q", s)
			}
		}
		_ = Result(rep, nil)
	})
}

// A reply that comes after the deadline is not waited for (see
// TestNoAnswerInTime); one that comes in time is read. The context of a
// scan that was cancelled gives temperror too.
func TestCancelled(t *testing.T) {
	def := Facts{}.Define(check.Env{Section: Config{URL: "http://127.0.0.1:1"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := def.Run(ctx, view(msg("x"))); res.Result != check.Temperror {
		t.Errorf("a cancelled scan: %s %q", res.Result, res.Detail)
	}
}
