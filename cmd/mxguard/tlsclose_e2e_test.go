package main

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mxguard/internal/testcert"
)

// TestTLSCloseNotify: after QUIT over STARTTLS, mxguard ends TLS with a
// close_notify alert before it closes the connection (RFC 8446 §6.1), as
// gnutls-cli, a real client, checks: a peer that just closes the socket is
// reported as an improper termination (and Exim logs a TLS error for every
// such delivery).
func TestTLSCloseNotify(t *testing.T) {
	if _, err := exec.LookPath("gnutls-cli"); err != nil {
		t.Fatalf("gnutls-cli is not installed (.ci/run installs gnutls-bin): %v", err)
	}
	cert := testcert.New(t, "mx.example.org")
	listen, _ := sinkMxguardListen(t, `
    tls: {cert: `+cert.CertFile+`, key: `+cert.KeyFile+`}
`, "")
	host, port, _ := strings.Cut(listen, ":")
	cmd := exec.Command("gnutls-cli", "--starttls-proto=smtp", "--insecure", "--crlf", "--port", port, host)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	// The client talks once TLS is up and each reply is in, as a mail
	// client does; gnutls-cli reads its input as soon as it starts.
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	expect := func(prefix string) {
		t.Helper()
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), prefix) {
				return
			}
		}
		t.Fatalf("gnutls-cli ended before %q:\n%s", prefix, out.String())
	}
	expect("- Simple Client Mode")
	fmt.Fprint(stdin, "EHLO client.sender.test\n")
	expect("250 ")
	fmt.Fprint(stdin, "QUIT\n")
	expect("221 2.0.0 mx.example.org closing connection")
	go func() { _ = cmd.Wait(); pw.Close() }()
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	s := out.String()
	if strings.Contains(s, "non-properly terminated") || !strings.Contains(s, "Peer has closed the GnuTLS connection") {
		t.Fatalf("the TLS session did not end with close_notify:\n%s", s)
	}
}
