package testrspamd

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// The shared rspamd answers /ping and scans; a stopped one is gone from
// its port, and a restarted one is back on it.
func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatalf("ping: %v\n%s", err, s.Logs())
	}
	resp, err := http.Post(s.URL()+"/checkv2", "message/rfc822", strings.NewReader("Subject: "+RejectMarker+"\r\n\r\nhi\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("checkv2: status %d", resp.StatusCode)
	}
	s.Stop()
	if err := Ping(s.Addr); err == nil {
		t.Fatalf("rspamd still answers after Stop")
	}
	s.Restart(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatalf("ping after restart: %v\n%s", err, s.Logs())
	}
	if a, b := Shared(t), Shared(t); a != b || Ping(a.Addr) != nil {
		t.Errorf("Shared is not one answering rspamd: %p %p", a, b)
	}
}
