package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startZoneServe runs zone-serve with args in a goroutine and returns the
// address it reports, a function that stops it and returns its exit code,
// and its standard error.
func startZoneServe(t *testing.T, args ...string) (string, func() int, *syncBuffer) {
	t.Helper()
	pr, pw := io.Pipe()
	stderr := new(syncBuffer)
	stop := make(chan struct{})
	code := make(chan int, 1)
	go func() {
		code <- zoneServe(args, pw, stderr, stop)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("zone-serve printed no address: %v; stderr: %s", err, stderr)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("first line %q, want listening on ADDR", line)
	}
	go io.Copy(io.Discard, pr)
	return addr, func() int {
		close(stop)
		select {
		case c := <-code:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("zone-serve did not stop")
			return -1
		}
	}, stderr
}

func writeZone(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bench.zone")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestZoneServe(t *testing.T) {
	zone := corpusPath("zones/e2e.zone")
	for _, tc := range []struct {
		name, listen string
	}{
		{"own port", "127.0.0.1:0"},
		{"relayed", "127.0.0.2:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, stop, stderr := startZoneServe(t, "--listen", tc.listen, zone)
			for _, network := range []string{"udp", "tcp"} {
				c := &dns.Client{Net: network, Timeout: 2 * time.Second}
				resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("sender.test.", dns.TypeTXT), addr)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if len(resp.Answer) != 1 || !strings.Contains(resp.Answer[0].String(), "v=spf1 ip4:127.0.0.0/8 -all") {
					t.Errorf("%s: answer %v", network, resp.Answer)
				}
				resp, _, err = c.Exchange(new(dns.Msg).SetQuestion("nothing.test.", dns.TypeA), addr)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 {
					t.Errorf("%s: nothing.test: rcode %s, authority %v; want NXDOMAIN with a SOA", network, dns.RcodeToString[resp.Rcode], resp.Ns)
				}
			}
			if code := stop(); code != exitOK {
				t.Errorf("exit %d, stderr: %s", code, stderr)
			}
		})
	}
}

func TestZoneServeRefuses(t *testing.T) {
	good := corpusPath("zones/e2e.zone")
	bad := writeZone(t, "sender.test. IN A not-an-address\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no zone", nil, "no zone file"},
		{"not loopback", []string{"--listen", "0.0.0.0:5353", good}, "not a loopback address"},
		{"hostname", []string{"--listen", "example.org:53", good}, "not a loopback address"},
		{"bad zone", []string{bad}, bad + ": dns: "},
		{"missing file", []string{good + ".missing"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			stop := make(chan struct{})
			close(stop)
			if code := zoneServe(tc.args, &stdout, &stderr, stop); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
	var stdout, stderr syncBuffer
	if code := zoneServe([]string{"-h"}, &stdout, &stderr, nil); code != exitOK || !strings.Contains(stderr.String(), "usage: mxguard zone-serve") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr.String())
	}
}
