package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"mxguard/checks/resolver/dnstest"
)

const zoneServeUsage = `usage: mxguard zone-serve [--listen ADDR] ZONEFILE...

Serves the records of the zone files (RFC 1035 master-file text; $ORIGIN and
$TTL work, relative names without $ORIGIN are relative to the root) over UDP
and TCP on a loopback address until SIGINT or SIGTERM, as an authoritative
server: NXDOMAIN and NODATA come with a SOA, CNAMEs are chased, wildcards
work. It is a development and benchmark DNS server, for pointing mxguard's
dns.servers at without asking the machine's resolver; it refuses to listen
on anything but loopback.

The first line on standard output is "listening on ADDR"; with the default
--listen 127.0.0.1:0 the port is chosen by the system, so scripts read it
from that line.

flags:
`

// cmdZoneServe implements "mxguard zone-serve".
func cmdZoneServe(args []string, stdout, stderr io.Writer) int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	done := make(chan struct{})
	go func() {
		<-stop
		close(done)
	}()
	return zoneServe(args, stdout, stderr, done)
}

// zoneServe is cmdZoneServe with the stop signal given: it serves until
// stop is closed.
func zoneServe(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	fs := flag.NewFlagSet("zone-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` to serve on, UDP and TCP; port 0 picks a free one")
	fs.Usage = func() {
		fmt.Fprint(stderr, zoneServeUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "mxguard zone-serve: no zone file given")
		fs.Usage()
		return exitUsage
	}
	addr, err := loopbackAddr(*listen)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard zone-serve:", err)
		return exitUsage
	}
	texts, err := readZoneFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	zone, err := dnstest.New(texts...)
	if err != nil {
		fmt.Fprintln(stderr, "mxguard zone-serve:", err)
		return exitFailed
	}
	defer zone.Close()

	// dnstest always picks its own port on 127.0.0.1; any other address is
	// served by relaying each query, over the transport it came in on.
	served := zone.Addr()
	if addr != netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0) {
		r, err := startZoneRelay(addr.String(), zone.Addr())
		if err != nil {
			fmt.Fprintln(stderr, "mxguard zone-serve:", err)
			return exitFailed
		}
		defer r.close()
		served = r.addr
	}
	fmt.Fprintf(stdout, "listening on %s\n", served)
	<-stop
	return exitOK
}

// loopbackAddr parses --listen and refuses anything but a loopback IP.
func loopbackAddr(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--listen %q: %w", s, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("--listen %q: not a loopback address (this is a development DNS server)", s)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--listen %q: %w", s, err)
	}
	return ap, nil
}

// readZoneFiles reads and parses every file, so that an error names the
// file and line, and returns their text.
func readZoneFiles(paths []string) ([]string, error) {
	var texts []string
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("mxguard zone-serve: %w", err))
			continue
		}
		zp := dns.NewZoneParser(strings.NewReader(string(b)), ".", p)
		for _, ok := zp.Next(); ok; _, ok = zp.Next() {
		}
		if err := zp.Err(); err != nil {
			errs = append(errs, fmt.Errorf("mxguard zone-serve: %w", err))
			continue
		}
		texts = append(texts, string(b))
	}
	return texts, errors.Join(errs...)
}

// zoneRelay serves a fixed loopback address by passing each query on to
// the dnstest server and its answer back unchanged (truncation included,
// so that TCP fallback still happens between the client and the relay).
type zoneRelay struct {
	addr     string
	udp, tcp *dns.Server
}

func startZoneRelay(listen, upstream string) (*zoneRelay, error) {
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return nil, err
	}
	r := &zoneRelay{addr: pc.LocalAddr().String()}
	handler := func(network string) dns.HandlerFunc {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		return func(w dns.ResponseWriter, req *dns.Msg) {
			resp, _, err := c.Exchange(req, upstream)
			if err != nil {
				resp = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
			}
			_ = w.WriteMsg(resp)
		}
	}
	r.udp = &dns.Server{PacketConn: pc, Handler: handler("udp")}
	r.tcp = &dns.Server{Listener: l, Handler: handler("tcp")}
	started := make(chan error, 4)
	for _, srv := range []*dns.Server{r.udp, r.tcp} {
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				started <- err
			}
		}()
	}
	for range 2 {
		if err := <-started; err != nil {
			pc.Close()
			l.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *zoneRelay) close() {
	_ = r.udp.Shutdown()
	_ = r.tcp.Shutdown()
}
