package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestShutdownWhileAccepting: a shutdown that meets connections being
// accepted neither races with them (go test -race) nor leaves one
// running: Serve returns ErrServerClosed and Shutdown waits for every
// session it let start.
func TestShutdownWhileAccepting(t *testing.T) {
	be := startBackend(t, nil)
	for round := range 20 {
		px := startProxy(t, be.addr, nil)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", px.addr, time.Second)
					if err != nil {
						continue
					}
					c.Close()
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := px.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("round %d: Shutdown: %v", round, err)
		}
		cancel()
		close(stop)
		wg.Wait()
		if n := px.srv.Active(); n != 0 {
			t.Fatalf("round %d: %d sessions still active after Shutdown", round, n)
		}
	}
}
