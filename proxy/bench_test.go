package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"

	"mxguard/policy"
)

// BenchmarkForward is the forward path for one 4 KiB message: a kept
// backend connection, RSET, XFORWARD-less envelope, DATA with the Received
// header and dot-stuffing, and the backend's reply (a go-smtp server on
// loopback, which is part of what is measured).
func BenchmarkForward(b *testing.B) {
	be := startBackend(b, nil)
	bo := testBackendOptions(be.addr)
	bo.MaxIdle = 4
	fwd := NewForwarder(bo)
	defer fwd.Close()
	sp := &Spool{Dir: b.TempDir(), Threshold: 1 << 20}
	msg := sp.NewMessage()
	body := "From: a@sender.test\r\nSubject: bench\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\r\n", 64)
	msg.Write([]byte(body))
	defer msg.Close()
	tx := &policy.Transaction{Session: "BENCH", ID: "BENCH.1", MailFrom: "a@sender.test", Rcpts: []string{"user@example.org"},
		Client: policy.Client{Addr: netip.MustParseAddrPort("192.0.2.1:4000"), HELO: "c.test", ESMTP: true}, Content: msg}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := fwd.Deliver(context.Background(), tx, msg); d.Reply.Code != 250 {
			b.Fatal(d.Reply)
		}
	}
}

// BenchmarkDataScanner is the receive path's byte work: DATA content read,
// dot-unstuffed, checked and copied to the spool.
func BenchmarkDataScanner(b *testing.B) {
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\r\n"
	in := []byte(strings.Repeat(line, 16<<10/len(line)) + ".\r\n")
	var out bytes.Buffer
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out.Reset()
		d := newDataScanner(&out, 0, true)
		if err := d.readData(bufSource{bufio.NewReader(bytes.NewReader(in))}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceiveToSpool is DATA content read through a session's 4 KiB
// reader into the spool, for a message kept in memory and for one written
// to a spool file: the scanner hands its output on every time the reader
// runs dry, as it does when it waits for the network.
func BenchmarkReceiveToSpool(b *testing.B) {
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\r\n"
	in := []byte(strings.Repeat(line, 512<<10/len(line)) + ".\r\n")
	for _, c := range []struct {
		name      string
		threshold int
	}{{"memory", 1 << 20}, {"file", 64 << 10}} {
		b.Run(c.name, func(b *testing.B) {
			sp := &Spool{Dir: b.TempDir(), Threshold: c.threshold}
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				msg := sp.NewMessage()
				d := newDataScanner(msg, 0, true)
				if err := d.readData(bufSource{bufio.NewReaderSize(bytes.NewReader(in), 4096)}); err != nil {
					b.Fatal(err)
				}
				d.release()
				msg.Close()
			}
		})
	}
}
