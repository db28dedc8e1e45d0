package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"
)

// DialFunc opens a connection to the host of a peer URL.
type DialFunc func(ctx context.Context, peerURL *url.URL) (net.Conn, error)

// DialPlain dials http:// peer URLs in plain TCP and refuses https:// ones.
func DialPlain(ctx context.Context, u *url.URL) (net.Conn, error) {
	if u.Scheme == "https" {
		return nil, fmt.Errorf("peer URL %s is https but this member has no peer TLS (give --peer-cert-file and --peer-key-file, or --peer-auto-tls)", u)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", u.Host)
}

// TLSDialer dials https:// peer URLs with TLS configured by cfg (the
// server name is the URL's host when cfg names none), and http:// ones in
// plain TCP.
func TLSDialer(cfg *tls.Config) DialFunc {
	return func(ctx context.Context, u *url.URL) (net.Conn, error) {
		if u.Scheme != "https" {
			return DialPlain(ctx, u)
		}
		d := tls.Dialer{Config: cfg}
		return d.DialContext(ctx, "tcp", u.Host)
	}
}

// TLSListener wraps l, which listens on an https:// peer URL: each accepted
// connection speaks TLS configured by cfg. The handshake happens on the
// connection's first read (in the goroutine serving it, under the hello's
// deadline), and one that fails is logged with the peer's address. A peer
// that dials in plain TCP is refused with a reason naming the fix.
func TLSListener(l net.Listener, cfg *tls.Config, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.Default()
	}
	return &tlsListener{Listener: l, cfg: cfg, log: log}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
	log *slog.Logger
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: c, l: l}, nil
}

// tlsConn is an accepted connection whose first read tells TLS from plain
// TCP; every read and write after goes through the TLS connection.
type tlsConn struct {
	net.Conn // the raw connection
	l        *tlsListener

	once sync.Once
	tc   *tls.Conn // set by once
	err  error     // set by once
}

// errPlainPeer is what a tlsConn reads when its peer dialled in plain TCP.
var errPlainPeer = errors.New("a peer dialled this https:// peer URL in plain TCP")

// tlsRecordHandshake is the first byte of every TLS connection.
const tlsRecordHandshake = 0x16

func (c *tlsConn) start() {
	br := bufio.NewReaderSize(c.Conn, 512)
	first, err := br.Peek(1)
	if err != nil {
		c.err = err
		return
	}
	if first[0] != tlsRecordHandshake {
		c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		writeStatus(c.Conn, statusRefused, fmt.Sprintf("the peer URL %s speaks TLS: use https:// for it in --initial-cluster and the member's peer URLs, with --peer-cert-file and --peer-key-file (or --peer-auto-tls)", c.Conn.LocalAddr()))
		c.l.log.Warn("refused a plain TCP peer connection on an https:// peer URL", "remote", c.Conn.RemoteAddr().String())
		c.err = errPlainPeer
		return
	}
	c.tc = tls.Server(bufferedConn{c.Conn, br}, c.l.cfg)
	if err := c.tc.Handshake(); err != nil {
		c.l.log.Warn("refused a peer connection: TLS handshake failed", "remote", c.Conn.RemoteAddr().String(), "err", err)
		c.err = fmt.Errorf("TLS handshake: %w", err)
	}
}

func (c *tlsConn) Read(p []byte) (int, error) {
	if c.once.Do(c.start); c.err != nil {
		return 0, c.err
	}
	return c.tc.Read(p)
}

func (c *tlsConn) Write(p []byte) (int, error) {
	if c.once.Do(c.start); c.err != nil {
		return 0, c.err
	}
	return c.tc.Write(p)
}

// ConnectionState is the TLS state once the handshake has run.
func (c *tlsConn) ConnectionState() tls.ConnectionState {
	if c.once.Do(c.start); c.tc == nil {
		return tls.ConnectionState{}
	}
	return c.tc.ConnectionState()
}

// bufferedConn reads through a bufio.Reader that may hold bytes already
// peeked from the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
