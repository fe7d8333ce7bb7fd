// Command idleclient opens many SMTP sessions and keeps them idle, so that
// the server's memory per idle session can be measured from another
// process (bench/idle.sh). Each session reads the banner and, with -ehlo,
// sends EHLO and reads its reply; then nothing more is sent until the
// program is told to stop (SIGINT, SIGTERM) or -duration passes.
//
//	idleclient -addr 127.0.0.1:2525 -n 10000 [-ehlo] [-sources 254]
//
// It prints "holding N sessions ..." once every session is open, and
// "held=N lost=M" when it ends: lost counts sessions the server closed
// while they were held.
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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:2525", "the server's `address` (loopback)")
		n        = flag.Int("n", 1000, "sessions to open")
		ehlo     = flag.Bool("ehlo", false, "send EHLO after the banner and read its reply")
		sources  = flag.Int("sources", 1, "spread sessions over 127.0.0.1 to 127.0.0.`N` (Linux routes 127/8 to lo)")
		dialers  = flag.Int("dialers", 100, "sessions opened at once")
		duration = flag.Duration("duration", time.Hour, "how long to hold the sessions")
		timeout  = flag.Duration("timeout", 30*time.Second, "bound on opening one session")
	)
	flag.Parse()
	if err := run(*addr, *n, *ehlo, *sources, *dialers, *duration, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "idleclient:", err)
		os.Exit(1)
	}
}

func run(addr string, n int, ehlo bool, sources, dialers int, duration, timeout time.Duration) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("-addr %q: want a loopback address and port", addr)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	conns := make([]net.Conn, n)
	var (
		failed atomic.Int64
		first  atomic.Value
		wg     sync.WaitGroup
		next   atomic.Int64
	)
	start := time.Now()
	for range max(dialers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := open(ap, i, sources, ehlo, timeout)
				if err != nil {
					if failed.Add(1) == 1 {
						first.Store(fmt.Errorf("session %d: %w", i, err))
					}
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	held := n - int(failed.Load())
	what := "idle after the banner"
	if ehlo {
		what = "idle after EHLO"
	}
	fmt.Printf("holding %d sessions to %s (%s), opened in %.2f s; %d failed to open\n",
		held, addr, what, time.Since(start).Seconds(), failed.Load())
	if err, _ := first.Load().(error); err != nil {
		fmt.Fprintln(os.Stderr, "idleclient: first failure:", err)
	}

	// One goroutine per session notices the server closing it: a blocked
	// read costs this process a goroutine, not the server anything.
	var lost atomic.Int64
	for _, c := range conns {
		if c == nil {
			continue
		}
		go func() {
			var b [512]byte
			if _, err := c.Read(b[:]); err != nil && !errors.Is(err, net.ErrClosed) {
				lost.Add(1)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-time.After(duration):
	}
	lostNow := lost.Load()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	fmt.Printf("held=%d failed=%d lost=%d\n", held, failed.Load(), lostNow)
	if failed.Load() > 0 {
		return fmt.Errorf("%d sessions failed to open", failed.Load())
	}
	return nil
}

// open connects from 127.0.0.(1 + i % sources), reads the banner and, with
// ehlo, says EHLO and reads the reply.
func open(server netip.AddrPort, i, sources int, ehlo bool, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if sources > 1 && server.Addr().Is4() {
		src := netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i%min(sources, 254))})
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	c, err := d.Dial("tcp", server.String())
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReaderSize(c, 512)
	if err := expect(r, "220"); err != nil {
		c.Close()
		return nil, fmt.Errorf("banner: %w", err)
	}
	if ehlo {
		if _, err := io.WriteString(c, "EHLO idle.example\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		if err := expect(r, "250"); err != nil {
			c.Close()
			return nil, fmt.Errorf("EHLO: %w", err)
		}
	}
	if r.Buffered() > 0 {
		c.Close()
		return nil, errors.New("the server sent more than one reply")
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// expect reads one reply, all its lines, and checks its code.
func expect(r *bufio.Reader, code string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("got %q, want %s", strings.TrimSpace(line), code)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}
