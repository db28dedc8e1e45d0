package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// tlsHint tells why the endpoints do not answer when TLS is the reason: a
// request that times out while gRPC keeps failing its handshakes says only
// "context deadline exceeded". It dials each endpoint once with the
// command's TLS settings and names the first TLS failure and its fix; ""
// when TLS is not what fails.
func (cf *clientFlags) tlsHint() string {
	cfg, err := cf.config()
	if err != nil {
		return ""
	}
	for _, ep := range cf.endpoints {
		host, secure := endpointHost(ep)
		tc := cfg.TLS
		if tc == nil {
			if !secure {
				continue
			}
			tc = &tls.Config{}
		}
		if hint := probeTLS(host, tc, cf.dialTimeout); hint != "" {
			return hint
		}
	}
	return ""
}

// endpointHost is the host:port of an endpoint and whether its scheme asks
// for TLS.
func endpointHost(ep string) (string, bool) {
	if u, err := url.Parse(ep); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Host, u.Scheme == "https"
	}
	return ep, false
}

// probeTLS handshakes with addr (and reads briefly, since under TLS 1.3 a
// server refuses the client's certificate after the client's handshake
// ends).
func probeTLS(addr string, tc *tls.Config, timeout time.Duration) string {
	if timeout <= 0 || timeout > 2*time.Second {
		timeout = 2 * time.Second
	}
	raw, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return ""
	}
	defer raw.Close()
	c := tc.Clone()
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(addr)
	}
	c.NextProtos = []string{"h2"}
	conn := tls.Client(raw, c)
	conn.SetDeadline(time.Now().Add(timeout))
	err = conn.Handshake()
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
	}
	msg := err.Error()
	fix := ""
	switch {
	case strings.Contains(msg, "does not look like a TLS handshake"), strings.Contains(msg, "record header"):
		fix = "the endpoint does not serve TLS: use http:// and leave out --cacert, --cert and --key"
	case strings.Contains(msg, "unknown authority"):
		fix = "give the CA that signed the server's certificate with --cacert"
	case strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "doesn't contain any IP SANs"):
		fix = "the server's certificate does not name the host in --endpoints"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"):
		fix = "the server requires a client certificate signed by its trusted CA: give --cert and --key"
	case strings.Contains(msg, "expired"):
		fix = "a certificate has expired"
	default:
		fix = "check --cacert, --cert and --key"
	}
	return fmt.Sprintf("TLS with %s failed: %v; %s", addr, err, fix)
}
