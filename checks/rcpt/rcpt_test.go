package rcpt

import (
	"strings"
	"testing"
)

// TestNew pins the error for each bad set of Options.
func TestNew(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string // "" for success
	}{
		{"none", Options{}, ""},
		{"backend", Options{Verify: "backend", Backend: "127.0.0.1:25"}, ""},
		{"unix backend", Options{Verify: "backend", Backend: "unix:/run/lmtp", LMTP: true}, ""},
		{"bad verify", Options{Verify: "ldap"}, `rcpt: verify: expected none, backend, file or both, got "ldap"`},
		{"file without file", Options{Verify: "file"}, "rcpt: verify: file needs a recipients file"},
		{"backend without backend", Options{Verify: "backend"}, `rcpt: backend: expected "host:port" or "unix:/path", got ""`},
		{"backend without port", Options{Verify: "backend", Backend: "mail.example.org"}, `rcpt: backend: expected "host:port" or "unix:/path", got "mail.example.org"`},
		{"empty unix path", Options{Verify: "backend", Backend: "unix:"}, `rcpt: backend: expected "unix:/path", got "unix:"`},
		{"bad helo", Options{Helo: "mx example"}, `rcpt: helo: white space or control character in "mx example"`},
		{"negative", Options{Timeout: -1, NegativeTTL: -1, CacheSize: -1}, "rcpt: timeout: must not be negative, got -1ns\n" +
			"negative TTL: must not be negative, got -1ns\ncache size: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.o)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				v.Close()
			}
			if got != tt.want {
				t.Errorf("New error\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestDefaults: zero Options take the documented defaults.
func TestDefaults(t *testing.T) {
	v := newVerifier(t, Options{Verify: VerifyBackend, Backend: "127.0.0.1:25"})
	want := Options{
		Verify:      VerifyBackend,
		Backend:     "127.0.0.1:25",
		Helo:        DefaultHelo,
		Timeout:     DefaultTimeout,
		PositiveTTL: DefaultPositiveTTL,
		NegativeTTL: DefaultNegativeTTL,
		CacheSize:   DefaultCacheSize,
		MaxIdle:     DefaultMaxIdle,
	}
	if v.o != want {
		t.Errorf("options\n got %+v\nwant %+v", v.o, want)
	}
}

// TestUnchecked: with verification off, or no Verifier at all, nothing is
// checked.
func TestUnchecked(t *testing.T) {
	var nilV *Verifier
	for name, v := range map[string]*Verifier{"none": newVerifier(t, Options{Verify: "none"}), "nil": nilV} {
		if got := v.Verify(t.Context(), "alice@example.org"); got.Status != Unchecked {
			t.Errorf("%s: Verify = %+v, want unchecked", name, got)
		}
	}
	if err := newVerifier(t, Options{}).Reload(); err != nil {
		t.Errorf("Reload without a file: %v", err)
	}
}

// TestDetailClean: a backend reply cannot inject lines or unbounded text
// into a log.
func TestDetailClean(t *testing.T) {
	got := clean("550 a\r\nb\x1b[31m" + strings.Repeat("x", 1000))
	if strings.ContainsAny(got, "\r\n\x1b") || len(got) > maxDetail+len("…") {
		t.Errorf("clean = %q", got)
	}
}
