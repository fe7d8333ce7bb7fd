package clamav

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mxguard/checks/check"
	"mxguard/checks/check/checktest"
	"mxguard/internal/membudget"
	"mxguard/internal/testclamd"
)

// The package's tests share one real clamd (testclamd).
func TestMain(m *testing.M) {
	code := m.Run()
	testclamd.StopShared()
	os.Exit(code)
}

// message is a MIME message with one attachment, base64 as mail carries it.
func message(name string, attachment []byte) []byte {
	var b strings.Builder
	b.WriteString("From: a@sender.test\r\nTo: u@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b1\r\nContent-Type: application/octet-stream; name=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return []byte(b.String())
}

// zipOf is a zip archive holding one file.
func zipOf(t testing.TB, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func scan(t *testing.T, address string, msg []byte) (Reply, error) {
	t.Helper()
	c, err := NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Scan(ctx, bytes.NewReader(msg))
}

// clamd finds its signatures in a message however deep they sit: in the
// text, in a base64 attachment, in a zip, in a zip in a zip; over its unix
// socket and over TCP alike. A clean message is clean.
func TestScanRealClamd(t *testing.T) {
	srv := testclamd.Shared(t)
	eicar := testclamd.EICAR()
	big := bytes.Repeat([]byte("clean text, nothing to see here\r\n"), 200000) // 6.6 MB: many chunks
	for _, c := range []struct {
		name string
		msg  []byte
		want string // "" for clean
	}{
		{"eicar plain", append([]byte("Subject: t\r\n\r\n"), append(eicar, "\r\n"...)...), testclamd.EICARName},
		{"eicar attached", message("eicar.com", eicar), testclamd.EICARName},
		{"eicar zipped", message("eicar.zip", zipOf(t, "eicar.com", eicar)), testclamd.EICARName},
		{"eicar zipped twice", message("eicar.zip", zipOf(t, "inner.zip", zipOf(t, "eicar.com", eicar))), testclamd.EICARName},
		{"own signature attached", message("x.txt", []byte("a "+testclamd.TestString+" b")), testclamd.TestName},
		{"own signature after many chunks", append(append([]byte("Subject: t\r\n\r\n"), big...), testclamd.TestString+"\r\n"...), testclamd.TestName},
		{"clean", message("notes.txt", []byte("hello")), ""},
		{"clean large", append([]byte("Subject: t\r\n\r\n"), big...), ""},
		{"empty", nil, ""},
	} {
		for _, addr := range []string{srv.Address(), srv.TCPAddr} {
			t.Run(c.name+" "+addr[:4], func(t *testing.T) {
				rep, err := scan(t, addr, c.msg)
				if err != nil {
					t.Fatalf("scan: %v", err)
				}
				if c.want == "" {
					if rep.Infected || len(rep.Signatures) > 0 {
						t.Fatalf("clean message: %+v", rep)
					}
					return
				}
				if !rep.Infected || len(rep.Signatures) != 1 || rep.Signatures[0] != c.want {
					t.Fatalf("got %+v, want infected by %s", rep, c.want)
				}
			})
		}
	}
}

// A scan the memory budget has no room for still scans, in small chunks,
// and one that has room gives back what it took.
func TestScanMemoryBudget(t *testing.T) {
	srv := testclamd.Shared(t)
	big := append(bytes.Repeat([]byte("clean text\r\n"), 100000), testclamd.TestString...)
	for _, budget := range []*membudget.Budget{membudget.New(1), membudget.New(1 << 20)} {
		c, _ := NewClient(srv.Address())
		c.Memory = budget
		rep, err := c.Scan(context.Background(), bytes.NewReader(big))
		if err != nil || !rep.Infected || rep.Signatures[0] != testclamd.TestName {
			t.Fatalf("budget %d: %+v, %v", budget.Limit(), rep, err)
		}
		if budget.InUse() != 0 {
			t.Fatalf("budget %d: %d bytes still reserved after the scan", budget.Limit(), budget.InUse())
		}
	}
}

// A stream longer than clamd's StreamMaxLength is an error that names the
// setting, never a clean message; so is a clamd that is not there.
func TestScanErrors(t *testing.T) {
	small := testclamd.Start(t, testclamd.Options{StreamMaxLength: "1K"})
	msg := append([]byte("Subject: t\r\n\r\n"), bytes.Repeat([]byte("x"), 300<<10)...)
	for _, addr := range []string{small.Address(), small.TCPAddr} {
		_, err := scan(t, addr, msg)
		if !errors.Is(err, ErrSizeLimit) || !strings.Contains(err.Error(), "StreamMaxLength") {
			t.Fatalf("%s: a stream over StreamMaxLength: %v, want ErrSizeLimit", addr, err)
		}
		res := Result(Reply{}, err)
		if res.Result != check.Temperror || !strings.Contains(res.Detail, "limits.max_message_bytes") {
			t.Fatalf("result %+v", res)
		}
	}
	// Takes asks the same question without a message.
	c, _ := NewClient(small.Address())
	if err := c.Takes(context.Background(), 300<<10); !errors.Is(err, ErrSizeLimit) {
		t.Fatalf("Takes(300KiB) of a clamd with StreamMaxLength 1K: %v, want ErrSizeLimit", err)
	}
	if err := c.Takes(context.Background(), 1000); err != nil {
		t.Fatalf("Takes(1000) of a clamd with StreamMaxLength 1K: %v", err)
	}
	// Under the limit, the same clamd scans.
	if rep, err := scan(t, small.TCPAddr, testclamd.EICAR()); err != nil || !rep.Infected {
		t.Fatalf("a short stream: %+v, %v", rep, err)
	}
	small.Stop()
	for _, addr := range []string{small.Address(), small.TCPAddr} {
		if rep, err := scan(t, addr, []byte("Subject: t\r\n\r\nhello\r\n")); err == nil {
			t.Fatalf("%s: clamd stopped: %+v, want an error", addr, rep)
		}
	}
}

// A peer that accepts the stream and never answers holds the scan only
// until the context's deadline: an error, not a hang and not a pass.
func TestScanDeadline(t *testing.T) {
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
			defer c.Close() // read nothing, answer nothing
		}
	}()
	c, err := NewClient(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// Large enough to fill the socket buffers, so the deadline ends a
	// write; the reply's read is bounded the same way.
	_, err = c.Scan(ctx, bytes.NewReader(make([]byte, 32<<20)))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a silent peer: %v, want a timeout", err)
	}
	if res := Result(Reply{}, err); res.Result != check.Temperror || !strings.Contains(res.Detail, "clamav.timeout") {
		t.Fatalf("result %+v", res)
	}
}

func TestParseReply(t *testing.T) {
	for _, c := range []struct {
		raw, want, err string
	}{
		{"stream: OK\x00", "clean", ""},
		{"stream: OK\n", "clean", ""},
		{"stream: Win.Test.EICAR_HDB-1 FOUND\x00", "Win.Test.EICAR_HDB-1", ""},
		{"stream: A FOUND\x00stream: B FOUND\x00", "A,B", ""},
		{"stream: A\x01\x7f\xff FOUND\x00", "A", ""},
		{"INSTREAM size limit exceeded. ERROR\x00", "", "StreamMaxLength"},
		{"stream: Can't allocate memory ERROR\x00", "", "Can't allocate memory"},
		{"", "", "no answer"},
		{"stream:  FOUND\x00", "", "without a signature name"},
		{"HTTP/1.1 400 Bad Request\r\n", "", "not clamd's"},
	} {
		rep, err := ParseReply([]byte(c.raw))
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %+v, %v; want an error with %q", c.raw, rep, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.raw, err)
		case c.want == "clean" && rep.Infected, c.want != "clean" && strings.Join(rep.Signatures, ",") != c.want:
			t.Errorf("%q: %+v, want %s", c.raw, rep, c.want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	for _, c := range []struct{ in, network, addr string }{
		{"unix:/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl"},
		{"127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"[::1]:3310", "tcp", "[::1]:3310"},
		{"clamd.internal:3310", "tcp", "clamd.internal:3310"},
		{"unix:run/clamd.ctl", "", ""},
		{"/run/clamav/clamd.ctl", "", ""},
		{"127.0.0.1", "", ""},
		{"127.0.0.1:0", "", ""},
		{"127.0.0.1:clamd", "", ""},
		{":3310", "", ""},
	} {
		n, a, err := ParseAddress(c.in)
		if n != c.network || a != c.addr || (err == nil) != (c.network != "") {
			t.Errorf("%q: %q %q %v, want %q %q", c.in, n, a, err, c.network, c.addr)
		}
	}
}

// Version reads clamd's VERSION answer.
func TestVersion(t *testing.T) {
	c, _ := NewClient(testclamd.Shared(t).Address())
	v, err := c.Version(context.Background())
	if err != nil || !strings.HasPrefix(v, "ClamAV ") {
		t.Fatalf("version %q, %v", v, err)
	}
}

// The check is off without an address, and gives its facts with one.
func TestDefine(t *testing.T) {
	if d := (Facts{}).Define(check.Env{}); d.Run != nil || d.Stage != check.Data {
		t.Fatalf("no section: %+v", d)
	}
	if d := (Facts{}).Define(check.Env{Section: Config{}}); d.Run != nil {
		t.Fatal("no address: the check runs")
	}
	d := (Facts{}).Define(check.Env{Section: Config{Address: testclamd.Shared(t).Address()}})
	if d.Run == nil || d.Timeout != 0 {
		t.Fatalf("with an address: %+v", d)
	}
	res := d.Run(context.Background(), checktest.View{Message: message("a.zip", zipOf(t, "eicar.com", testclamd.EICAR()))})
	f, _ := res.Facts.(Facts)
	if res.Result != Infected || !f.Infected || fmt.Sprint(f.Signatures) != "["+testclamd.EICARName+"]" {
		t.Fatalf("got %+v", res)
	}
	if res := d.Run(context.Background(), checktest.View{Message: []byte("Subject: hi\r\n\r\nhello\r\n")}); res.Result != Clean {
		t.Fatalf("clean: %+v", res)
	}
}
