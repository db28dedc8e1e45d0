package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/soheilhy/cmux"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// An https:// client listener serves, as etcd's does, gRPC and HTTP (health,
// the JSON gateway) on one port, over TLS:
//
//  1. cmux tells a TLS handshake from anything else. A plain connection is
//     answered with an error that says the port speaks TLS (HTTP/1.1's 400
//     "Client sent an HTTP request to an HTTPS server", or for gRPC a
//     FailedPrecondition status naming the fix), then closed: the call
//     fails at once, not by a timeout.
//  2. Each TLS connection is handshaken in a goroutine of its own, bounded
//     by tlsHandshakeTimeout; the certificate and CA bundle come from disk
//     as they are now (package certs), so a rotation counts from the next
//     connection on.
//  3. ALPN picks the server: the listener prefers "http/1.1" to "h2", so a
//     client offering both (curl, browsers, Go's HTTP client) gets HTTP/1.1
//     and a gRPC client, which offers only "h2", gets HTTP/2 and the gRPC
//     server. A client that negotiates nothing is told apart by its first
//     bytes (the HTTP/2 preface or not).
//  4. gRPC serves the connection natively (not through net/http, as etcd
//     does), and learns the TLS state from handshaken, so the common name
//     of a verified client certificate names the caller.

// serveTLS serves the https:// client listener behind cm.
func (m *Member) serveTLS(cm cmux.CMux, hs *httpStack, run func(func() error)) {
	tlsL := cm.Match(cmux.TLS())
	plainL := cm.Match(cmux.Any())
	run(func() error { return refusePlain(plainL) })
	s := &tlsSplitter{
		l:       tlsL,
		cfg:     m.tls.client.server,
		log:     m.log,
		grpc:    newConnListener(tlsL.Addr()),
		http:    newConnListener(tlsL.Addr()),
		pending: map[net.Conn]struct{}{},
	}
	run(func() error { return m.grpc.Serve(s.grpc) })
	run(func() error { return hs.srv.Serve(s.http) })
	run(s.serve)
}

// tlsSplitter accepts TLS connections and hands each, handshaken, to the
// gRPC or the HTTP server.
type tlsSplitter struct {
	l          net.Listener
	cfg        *tls.Config
	log        *slog.Logger
	grpc, http *connListener

	mu      sync.Mutex
	pending map[net.Conn]struct{} // guarded by mu: connections handshaking
	closed  bool                  // guarded by mu
	wg      sync.WaitGroup        // the handshakes
}

// serve accepts until the listener closes, then closes the connections
// still handshaking and the two listeners it feeds.
func (s *tlsSplitter) serve() error {
	defer func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.pending {
			c.Close()
		}
		s.mu.Unlock()
		// Closed first: a handshake that just ended closes its
		// connection instead of waiting for a server that stopped.
		s.grpc.Close()
		s.http.Close()
		s.wg.Wait()
	}()
	for {
		c, err := s.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.pending[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handshake(c)
		}()
	}
}

func (s *tlsSplitter) handshake(raw net.Conn) {
	tc := tls.Server(raw, s.cfg)
	done := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.pending, raw)
		return !s.closed
	}
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	if err != nil {
		if done() && !errors.Is(err, io.EOF) {
			s.log.Warn("refused a client connection: TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		}
		raw.Close()
		return
	}
	if !done() {
		raw.Close()
		return
	}
	var conn net.Conn = tc
	to := s.http
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
		to = s.grpc
	case "http/1.1":
	default:
		// No ALPN: tell by the first bytes, within the handshake's bound.
		br := bufio.NewReaderSize(tc, len(http2.ClientPreface))
		first, err := br.Peek(3)
		if err != nil {
			tc.Close()
			return
		}
		if bytes.Equal(first, []byte(http2.ClientPreface[:3])) {
			to = s.grpc
		}
		conn = &peekedTLSConn{tc, br}
	}
	tc.SetDeadline(time.Time{})
	to.deliver(conn)
}

// peekedTLSConn is a TLS connection whose first bytes were read ahead.
type peekedTLSConn struct {
	*tls.Conn
	r *bufio.Reader
}

func (c *peekedTLSConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener is a net.Listener fed connections by deliver.
type connListener struct {
	addr  net.Addr
	connc chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, connc: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to Accept, or closes it once the listener is closed.
func (l *connListener) deliver(c net.Conn) {
	select {
	case l.connc <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.connc:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// plainRefusalTimeout bounds how long a plain connection to an https://
// listener is read and answered.
const plainRefusalTimeout = 5 * time.Second

// plainRefusal is what a plain client of a TLS port is told.
const plainRefusal = "this endpoint serves TLS: connect with https:// and the CA that signed its certificate (--cacert)"

// refusePlain answers each plain connection to a TLS port with an error
// its client shows, then closes it.
func refusePlain(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() { // bounded by plainRefusalTimeout
			defer c.Close()
			c.SetDeadline(time.Now().Add(plainRefusalTimeout))
			br := bufio.NewReader(c)
			first, err := br.Peek(3)
			if err != nil {
				return
			}
			if string(first) != http2.ClientPreface[:3] {
				// As net/http answers plain HTTP on a TLS port.
				io.WriteString(c, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
				return
			}
			refuseHTTP2(c, br)
		}()
	}
}

// refuseHTTP2 answers the first request of a plain HTTP/2 (gRPC) client
// with a gRPC status that says the port speaks TLS: the call fails at once
// with that message (FailedPrecondition, which clients do not retry).
func refuseHTTP2(c net.Conn, br *bufio.Reader) {
	if _, err := br.Discard(len(http2.ClientPreface)); err != nil {
		return
	}
	fr := http2.NewFramer(c, br)
	if err := fr.WriteSettings(); err != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			for _, h := range [][2]string{
				{":status", "200"},
				{"content-type", "application/grpc"},
				{"grpc-status", strconv.Itoa(int(codes.FailedPrecondition))},
				{"grpc-message", plainRefusal},
			} {
				enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
			}
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
			fr.WriteGoAway(f.StreamID, http2.ErrCodeNo, []byte(plainRefusal))
			return
		}
	}
}
