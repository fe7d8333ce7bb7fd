// Command smtpload is the load generator of mxguard's benchmarks. Unlike
// Postfix's smtp-source it measures latency: the time from MAIL FROM to the
// final reply after the end of DATA, per message.
//
// Modes:
//
//	send     (default) -n messages over -c concurrent sessions; EHLO once per
//	         session, then MAIL, RCPT, DATA per message, each waiting for its
//	         reply (no PIPELINING). Prints the rate and latency percentiles.
//	         With -pause each session waits that long after each message,
//	         as a slow sender on a kept connection does: -c sessions then
//	         offer about -c / -pause messages a second between them, and
//	         the first messages are spread over the first pause.
//	hold     opens -c sessions, sends EHLO on each and keeps them idle.
//	trickle  opens -c sessions, goes as far as DATA on each and then sends
//	         the body one byte per -interval.
//
// With -dkim, send signs every message (ed25519-sha256, selector "bench" of
// the sender's domain, the key of testdata/zones/bench.zone), as most mail is.
//
// hold and trickle print "holding N sessions ..." once every session is
// open, then keep them until -duration has passed or SIGINT/SIGTERM.
//
// The last line of every mode is a key=value summary for scripts.
//
//	go run ./bench/smtpload -addr 127.0.0.1:2525 -n 2000 -c 8 -size 4096 \
//	    -from sender@sender.test -to user@example.org
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	addr       string
	mode       string
	n, c       int
	size       int
	from, to   string
	helo       string
	sources    int
	timeout    time.Duration
	duration   time.Duration
	interval   time.Duration
	dialers    int
	maxReports int
	dkim       bool
	pause      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:2525", "SMTP server `host:port`")
	flag.StringVar(&o.mode, "mode", "send", "`mode`: send, hold or trickle")
	flag.IntVar(&o.n, "n", 1000, "messages to send in all (send mode)")
	flag.IntVar(&o.c, "c", 8, "concurrent sessions")
	flag.IntVar(&o.size, "size", 4096, "message size in `bytes`, headers included")
	flag.StringVar(&o.from, "from", "sender@sender.test", "envelope sender, also the From header")
	flag.StringVar(&o.to, "to", "user@example.org", "recipient, also the To header")
	flag.StringVar(&o.helo, "helo", "client.test", "EHLO name")
	flag.IntVar(&o.sources, "sources", 1, "spread sessions over this many loopback source addresses, 127.0.0.1 up (at most 254)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "time allowed for each reply")
	flag.DurationVar(&o.duration, "duration", time.Hour, "hold and trickle: how long to keep the sessions")
	flag.DurationVar(&o.interval, "interval", time.Second, "trickle: time between two bytes")
	flag.IntVar(&o.dialers, "dialers", 200, "hold and trickle: sessions opened at once")
	flag.IntVar(&o.maxReports, "reports", 10, "failures reported one by one on standard error")
	flag.BoolVar(&o.dkim, "dkim", false, "send: sign every message with DKIM (the key of testdata/zones/bench.zone)")
	flag.DurationVar(&o.pause, "pause", 0, "send: time each session waits after each message (prints \"all N sessions open\" once each has sent one)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: smtpload [flags]\n\n"+
			"Sends SMTP load and measures the rate and per-message latency (MAIL FROM to\n"+
			"the final reply), or holds idle or trickling sessions (-mode hold, trickle).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || o.c < 1 || o.n < 0 || o.sources < 1 || o.sources > 254 || o.size < 0 || o.pause < 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	switch o.mode {
	case "send":
		err = send(o)
	case "hold", "trickle":
		err = hold(o)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtpload:", err)
		os.Exit(1)
	}
}

// reporter prints the first failures and counts the rest.
type reporter struct {
	max    int
	failed atomic.Int64
}

func (r *reporter) fail(format string, args ...any) {
	if n := r.failed.Add(1); n <= int64(r.max) {
		fmt.Fprintf(os.Stderr, "smtpload: "+format+"\n", args...)
	}
}

// session is one SMTP client connection.
type session struct {
	c       net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
}

// dial connects from the i-th source address, reads the banner and says EHLO.
func dial(o options, i int) (*session, error) {
	d := net.Dialer{Timeout: o.timeout}
	if o.sources > 1 {
		src := netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i%o.sources)})
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.Dial("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	wsize := 64 << 10
	if o.mode != "send" {
		wsize = 512 // thousands of sessions that send commands only
	}
	s := &session{c: c, r: bufio.NewReaderSize(c, 4096), w: bufio.NewWriterSize(c, wsize), timeout: o.timeout}
	if err := s.expect("banner", "220"); err != nil {
		c.Close()
		return nil, err
	}
	if err := s.cmd("EHLO "+o.helo, "250"); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (s *session) reply() (string, error) {
	_ = s.c.SetReadDeadline(time.Now().Add(s.timeout))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || line[3] != '-' {
			return line, nil
		}
	}
}

func (s *session) expect(what, code string) error {
	line, err := s.reply()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !strings.HasPrefix(line, code) {
		return &replyError{what, line}
	}
	return nil
}

// cmd sends a command line and expects a reply starting with code.
func (s *session) cmd(line, code string) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.expect(strings.Fields(line)[0], code)
}

// replyError is an unexpected reply; the session itself is still usable.
type replyError struct{ what, line string }

func (e *replyError) Error() string { return fmt.Sprintf("%s: %s", e.what, e.line) }

// message sends one transaction and returns its latency, MAIL to the final
// reply.
func (s *session) message(o options, header string, body []byte) (time.Duration, error) {
	start := time.Now()
	if err := s.cmd("MAIL FROM:<"+o.from+">", "250"); err != nil {
		return 0, err
	}
	if err := s.cmd("RCPT TO:<"+o.to+">", "250"); err != nil {
		return 0, err
	}
	if err := s.cmd("DATA", "354"); err != nil {
		return 0, err
	}
	_ = s.c.SetWriteDeadline(time.Now().Add(s.timeout))
	s.w.WriteString(header)
	s.w.Write(body)
	s.w.WriteString(".\r\n")
	if err := s.w.Flush(); err != nil {
		return 0, err
	}
	if err := s.expect("end of DATA", "250"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// body returns a message body of about size bytes minus the header: lines
// of 76 characters (none starting with a dot), ending in CRLF.
func body(size, header int) []byte {
	n := max(size-header, 2)
	b := make([]byte, 0, n)
	for line := 0; len(b) < n; line++ {
		if rest := n - len(b); rest < 78 {
			b = append(b, strings.Repeat("X", max(rest-2, 0))...)
			b = append(b, "\r\n"...)
			break
		}
		b = append(b, byte('0'+line%10))
		b = append(b, strings.Repeat("X", 75)...)
		b = append(b, "\r\n"...)
	}
	return b
}

// header returns the header section of message seq, as smtp-source writes
// it: From, To, Date, Message-ID, Subject.
func header(o options, seq int64) string {
	return fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nMessage-ID: <%d.%d@%s>\r\nSubject: smtpload message %d\r\n\r\n",
		o.from, o.to, time.Now().Format(time.RFC1123Z), os.Getpid(), seq, o.helo, seq)
}

func send(o options) error {
	hlen := len(header(o, int64(o.n)))
	msgBody := body(o.size, hlen)
	var (
		next      atomic.Int64
		rep       = &reporter{max: o.maxReports}
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, o.n)
		wg        sync.WaitGroup
	)
	start := time.Now()
	sessions := min(o.c, max(o.n, 1))
	var opened atomic.Int64
	for i := range sessions {
		wg.Go(func() {
			var s *session
			var local []time.Duration
			if o.pause > 0 {
				// Spread over the first pause, so that the sessions'
				// messages do not come in waves.
				time.Sleep(o.pause * time.Duration(i) / time.Duration(sessions))
			}
			defer func() {
				if s != nil {
					_ = s.cmd("QUIT", "221")
					s.c.Close()
				}
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			}()
			for {
				seq := next.Add(1)
				if seq > int64(o.n) {
					return
				}
				if s == nil {
					var err error
					if s, err = dial(o, i); err != nil {
						rep.fail("session %d: %v", i, err)
						s = nil
						continue
					}
				}
				hdr := header(o, seq)
				if o.dkim {
					sig, err := dkimSignature(o, hdr, msgBody)
					if err != nil {
						rep.fail("message %d: %v", seq, err)
						continue
					}
					hdr = sig + hdr
				}
				d, err := s.message(o, hdr, msgBody)
				if err == nil {
					local = append(local, d)
					if o.pause > 0 {
						if len(local) == 1 && opened.Add(1) == int64(sessions) {
							fmt.Printf("all %d sessions open after %.2f s\n", sessions, time.Since(start).Seconds())
						}
						time.Sleep(o.pause)
					}
					continue
				}
				rep.fail("message %d: %v", seq, err)
				var re *replyError
				if errors.As(err, &re) && !strings.HasPrefix(re.line, "421") {
					if s.cmd("RSET", "250") == nil {
						continue
					}
				}
				s.c.Close()
				s = nil
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	ok := len(latencies)
	ms := func(p float64) float64 {
		if ok == 0 {
			return 0
		}
		i := int(p*float64(ok)+0.999999) - 1
		return float64(latencies[max(i, 0)]) / float64(time.Millisecond)
	}
	rate := float64(ok) / elapsed.Seconds()
	fmt.Printf("%d messages of %d bytes over %d sessions to %s in %.3f s: %.0f msg/s; latency (MAIL to final reply) p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %d failed\n",
		ok, hlen+len(msgBody), sessions, o.addr, elapsed.Seconds(), rate, ms(0.5), ms(0.9), ms(0.99), ms(1), rep.failed.Load())
	fmt.Printf("ok=%d failed=%d seconds=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		ok, rep.failed.Load(), elapsed.Seconds(), rate, ms(0.5), ms(0.9), ms(0.99), ms(1))
	if rep.failed.Load() > 0 {
		return fmt.Errorf("%d messages failed", rep.failed.Load())
	}
	return nil
}

// hold opens o.c sessions and keeps them idle after EHLO, or trickling a
// message body one byte per o.interval.
func hold(o options) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, o.duration)
	defer cancelT()

	var (
		rep    = &reporter{max: o.maxReports}
		open   atomic.Int64
		lost   atomic.Int64
		wg     sync.WaitGroup
		ready  sync.WaitGroup
		dialer = make(chan struct{}, o.dialers)
	)
	start := time.Now()
	for i := range o.c {
		ready.Add(1)
		wg.Go(func() {
			dialer <- struct{}{}
			s, err := dial(o, i)
			if err == nil && o.mode == "trickle" {
				err = s.cmd("MAIL FROM:<"+o.from+">", "250")
				if err == nil {
					err = s.cmd("RCPT TO:<"+o.to+">", "250")
				}
				if err == nil {
					err = s.cmd("DATA", "354")
				}
				if err != nil {
					s.c.Close()
				}
			}
			<-dialer
			ready.Done()
			if err != nil {
				rep.fail("session %d: %v", i, err)
				return
			}
			open.Add(1)
			defer s.c.Close()
			// Notice the server closing the session.
			closed := make(chan struct{})
			go func() {
				_, _ = io.Copy(io.Discard, s.c)
				close(closed)
			}()
			var tick <-chan time.Time
			if o.mode == "trickle" {
				t := time.NewTicker(o.interval)
				defer t.Stop()
				tick = t.C
			}
			for {
				select {
				case <-ctx.Done():
					return
				case <-closed:
					lost.Add(1)
					return
				case <-tick:
					_ = s.c.SetWriteDeadline(time.Now().Add(o.timeout))
					if _, err := s.c.Write([]byte("X")); err != nil {
						lost.Add(1)
						return
					}
				}
			}
		})
	}
	ready.Wait()
	what := "idle after EHLO"
	if o.mode == "trickle" {
		what = fmt.Sprintf("trickling a DATA body one byte per %s", o.interval)
	}
	fmt.Printf("holding %d sessions to %s (%s), opened in %.2f s; %d failed to open\n",
		open.Load(), o.addr, what, time.Since(start).Seconds(), rep.failed.Load())
	wg.Wait()
	fmt.Printf("held=%d failed=%d lost=%d\n", open.Load(), rep.failed.Load(), lost.Load())
	if rep.failed.Load() > 0 {
		return fmt.Errorf("%d sessions failed to open", rep.failed.Load())
	}
	return nil
}
