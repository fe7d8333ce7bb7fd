package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

var errTooManyFiles = syscall.EMFILE

// ProxyProtoListener wraps l so that every connection must start with a
// PROXY protocol header (HAProxy's v1 text or v2 binary form), whose source
// address then stands for the client everywhere. Only peers in trusted may
// connect; an empty trusted list trusts every peer, which is right only
// when the port is reachable from the load balancers alone.
func ProxyProtoListener(l net.Listener, trusted []netip.Prefix, headerTimeout time.Duration) net.Listener {
	return ProxyProtoListenerFunc(l, func() []netip.Prefix { return trusted }, headerTimeout)
}

// ProxyProtoListenerFunc is ProxyProtoListener with the trusted peers read
// from trusted at each connection, so that a reload can add or remove a
// load balancer without a new listening socket.
func ProxyProtoListenerFunc(l net.Listener, trusted func() []netip.Prefix, headerTimeout time.Duration) net.Listener {
	return &proxyproto.Listener{
		Listener:          l,
		ReadHeaderTimeout: headerTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			list := trusted()
			if len(list) == 0 {
				return proxyproto.REQUIRE, nil
			}
			ap := addrPort(o.Upstream)
			for _, p := range list {
				if p.Contains(ap.Addr().Unmap()) {
					return proxyproto.REQUIRE, nil
				}
			}
			return proxyproto.REJECT, fmt.Errorf("proxy: %s may not send PROXY headers: %w", ap.Addr(), proxyproto.ErrInvalidUpstream)
		},
	}
}

// proxyHeaderMissing reports whether c is a PROXY protocol connection whose
// header did not arrive or did not parse. Such a connection must not be
// served: its RemoteAddr would be the load balancer's, not the client's.
func proxyHeaderMissing(c net.Conn) bool {
	pc, ok := c.(*proxyproto.Conn)
	if !ok {
		return false
	}
	return pc.ProxyHeader() == nil
}

func isProxyHeaderError(err error) bool {
	return errors.Is(err, proxyproto.ErrInvalidUpstream)
}
