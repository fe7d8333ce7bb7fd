package state

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisAddr is the address of the redis-server that TestMain starts for
// the package's tests.
var redisAddr string

// redisServer is a real redis-server on a loopback port, in a directory of
// its own, without persistence.
type redisServer struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	// exited is closed when the process has ended.
	exited chan struct{}
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts redis-server on port (a free one when 0) and waits
// until it answers PING.
func startRedis(dir string, port int) (*redisServer, error) {
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
	}
	s := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "")
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server (Debian package redis-server): %w", err)
	}
	s.exited = make(chan struct{})
	var werr error
	go func() { werr = s.cmd.Wait(); close(s.exited) }()
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("redis-server exited: %v", werr)
		default:
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			return nil, fmt.Errorf("redis-server on %s does not answer: %w", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server at once, as a crash would.
func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mxguard-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := startRedis(dir, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "state tests need a redis-server:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	redisAddr = srv.addr
	code := m.Run()
	srv.stop()
	os.RemoveAll(dir)
	os.Exit(code)
}
