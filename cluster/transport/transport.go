package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Raft is the member side of the transport: where received messages go and
// where the outcome of sends is reported.
type Raft interface {
	// Process hands a received message to Raft.
	Process(ctx context.Context, m *raftpb.Message) error
	// ReceiveSnapshot stores the application data that came with the
	// snapshot message m; Process(m) follows once it returns nil.
	ReceiveSnapshot(m *raftpb.Message, data io.Reader) error
	// IsRemoved reports whether id was removed from the cluster; its
	// connections are refused.
	IsRemoved(id uint64) bool
	// ReportUnreachable tells Raft that a message to id may be lost.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells Raft how a snapshot sent to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
	// ReportRemoved tells the member that peer says it was removed from the
	// cluster.
	ReportRemoved(peer uint64)
}

// Config configures a Transport.
type Config struct {
	ID        uint64 // this member
	ClusterID uint64
	Raft      Raft
	// WriteSnapshot writes the application data that goes with the
	// snapshot message m.
	WriteSnapshot func(w io.Writer, m *raftpb.Message) error
	// Call answers calls from other members (Transport.Call): method and
	// request in, answer out; an error goes back as the call's error. nil
	// refuses calls.
	Call func(ctx context.Context, method string, req []byte) ([]byte, error)
	// Query answers query connections (the member list, for a joining
	// member); nil refuses them.
	Query func() []byte
	// Faults, when set, injects faults into what this transport sends.
	Faults *Faults
	// Observe, when set, sees every message handed to Send (before any
	// fault acts on it); the playground draws them. It must not block.
	Observe func(m *raftpb.Message)
	// ObserveRTT, when set, is given each round-trip time measured to a
	// peer: the transport probes every peer each ProbeInterval over a
	// connection of its own. A peer that does not answer is not observed.
	// It is called from one goroutine per peer, never after the peer is
	// removed or Close returns, and must not block.
	ObserveRTT func(peer uint64, rtt time.Duration)
	// ProbeInterval is how often ObserveRTT peers are probed; 4s when
	// zero, as etcd's prober.
	ProbeInterval time.Duration
	// Dial opens a connection to a peer URL's host; DialPlain when nil.
	// TLSDialer speaks TLS to https:// URLs.
	Dial   DialFunc
	Logger *slog.Logger
}

// Timing. Loopback and LAN peers answer in milliseconds; these only bound
// the wait for a peer that is gone.
const (
	dialTimeout      = 2 * time.Second
	writeTimeout     = 5 * time.Second
	handshakeTimeout = 5 * time.Second
	snapshotTimeout  = 60 * time.Second // for the receiver to store and answer
	minBackoff       = 25 * time.Millisecond
	maxBackoff       = 500 * time.Millisecond
	// queueSize bounds the messages waiting for one peer; more are dropped
	// and Raft is told the peer is unreachable, as etcd does.
	queueSize = 4096
	// flushSize is how much a stream buffers before it writes, even while
	// more messages wait.
	flushSize = 256 << 10
)

// Transport sends Raft messages to peers and receives theirs.
type Transport struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport started

	mu        sync.Mutex
	peers     map[uint64]*peer          // guarded by mu
	stats     map[uint64]*peerStats     // guarded by mu: by peer, removed with it
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[net.Conn]struct{}     // guarded by mu: accepted connections
	closed    bool                      // guarded by mu
}

// New returns a Transport with no peers; AddPeer adds them and Serve
// accepts theirs. Close stops it.
func New(cfg Config) *Transport {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = DialPlain
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = defaultProbeInterval
	}
	t := &Transport{
		cfg:       cfg,
		log:       cfg.Logger,
		peers:     map[uint64]*peer{},
		stats:     map[uint64]*peerStats{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// AddPeer starts sending to id at urls (peer URLs, http://host:port). A
// known peer gets its URLs updated.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == t.cfg.ID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls, t.statsLocked(id))
	t.peers[id] = p
	p.start()
}

// RemovePeer stops sending to id and drops what was queued for it.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	delete(t.peers, id)
	delete(t.stats, id)
	t.mu.Unlock()
	if ok {
		p.stop()
	}
}

// Peers lists the IDs of the peers the transport sends to.
func (t *Transport) Peers() []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]uint64, 0, len(t.peers))
	for id := range t.peers {
		ids = append(ids, id)
	}
	return ids
}

// ActiveSince is when the stream to id last connected; zero while it is
// down.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		return time.Time{}
	}
	return p.activeSince()
}

// Send queues messages for their peers, appends that continue one another
// merged (coalesce). It never blocks: a full queue drops the message and
// reports the peer unreachable; a snapshot that cannot be sent now is
// reported failed.
func (t *Transport) Send(msgs []*raftpb.Message) {
	now := time.Now()
	if t.cfg.Observe != nil {
		for _, m := range msgs {
			if to := m.GetTo(); to != 0 && to != t.cfg.ID {
				t.cfg.Observe(m)
			}
		}
	}
	for _, m := range coalesce(msgs) {
		to := m.GetTo()
		if to == 0 || to == t.cfg.ID {
			continue
		}
		t.mu.Lock()
		p := t.peers[to]
		t.mu.Unlock()
		if p == nil {
			t.log.Debug("drop message to unknown peer", "peer", fmt.Sprintf("%x", to), "type", m.GetType().String())
			continue
		}
		if m.GetType() == raftpb.MessageType_MsgSnap {
			select {
			case p.snapc <- m:
			default:
				p.lost(1)
				t.cfg.Raft.ReportSnapshot(to, raft.SnapshotFailure)
			}
			continue
		}
		select {
		case p.msgc <- queued{m: m, at: now}:
		default:
			p.dropped(m)
		}
	}
}

// Serve accepts peers' connections on l until l is closed or the transport
// is. The transport owns l from now on and closes it on Close.
func (t *Transport) Serve(l net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		l.Close()
		return nil
	}
	t.listeners[l] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept peer connection on %s: %w", l.Addr(), err)
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return nil
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			t.handle(c)
		}()
	}
}

func (t *Transport) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// Close stops the peers, closes the listeners and connections, and waits
// for every goroutine of the transport.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.cancel()
	peers := t.peers
	t.peers = map[uint64]*peer{}
	for l := range t.listeners {
		l.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	for _, p := range peers {
		p.stop()
	}
	t.wg.Wait()
	return nil
}

// handle serves one accepted connection.
func (t *Transport) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	h, err := readHello(c)
	if err != nil {
		t.log.Debug("peer connection", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	if h.kind == kindQuery {
		t.answerQuery(c)
		return
	}
	switch {
	case !knownKind(h.kind):
		writeStatus(c, statusRefused, fmt.Sprintf("unknown connection kind %d (is this member older than the peer?)", h.kind))
		return
	case h.cluster != t.cfg.ClusterID:
		writeStatus(c, statusRefused, fmt.Sprintf("cluster ID mismatch: this member is in cluster %x, the peer in %x", t.cfg.ClusterID, h.cluster))
		t.log.Warn("refused peer from another cluster", "peer", fmt.Sprintf("%x", h.from), "peer-cluster-id", fmt.Sprintf("%x", h.cluster))
		return
	case h.to != t.cfg.ID:
		writeStatus(c, statusRefused, fmt.Sprintf("member ID mismatch: this member is %x, the peer dialled %x", t.cfg.ID, h.to))
		return
	case t.cfg.Raft.IsRemoved(h.from):
		writeStatus(c, statusRemoved, fmt.Sprintf("member %x was removed from cluster %x", h.from, t.cfg.ClusterID))
		return
	}
	if err := writeStatus(c, statusOK, ""); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	switch h.kind {
	case kindStream:
		t.readStream(h.from, t.receiver(h.from, c))
	case kindSnapshot:
		t.readSnapshot(h.from, c, t.receiver(h.from, c))
	case kindCall:
		t.answerCall(h.from, c, bufio.NewReaderSize(c, 64<<10))
	case kindProbe:
		t.answerProbes(h.from, c, bufio.NewReaderSize(c, 64))
	}
}

// receiver reads the messages a peer sends over c, counting their bytes.
func (t *Transport) receiver(from uint64, c net.Conn) *bufio.Reader {
	return bufio.NewReaderSize(countReader{c, &t.statsOf(from).received}, 64<<10)
}

// answerCall serves one call: a method frame and a request frame in, a
// status and an answer (or the error's text) out.
func (t *Transport) answerCall(from uint64, c net.Conn, br *bufio.Reader) {
	c.SetDeadline(time.Now().Add(writeTimeout))
	method, err := readFrame(br, nil)
	if err != nil {
		return
	}
	req, err := readFrame(br, nil)
	if err != nil {
		return
	}
	if t.cfg.Call == nil {
		writeStatus(c, statusFailed, "this member answers no calls")
		return
	}
	resp, err := t.cfg.Call(t.ctx, string(method), req)
	if err != nil {
		writeStatus(c, statusFailed, err.Error())
		return
	}
	c.Write(appendFrame([]byte{statusOK}, resp))
}

// CallError is a call's error as the called member gave it.
type CallError struct{ Message string }

func (e *CallError) Error() string { return e.Message }

// Call sends one request to member to over a connection of its own and
// returns the answer, or the member's error as a *CallError. Calls carry
// what must reach one member in particular (the leader's lease clock) with
// the members' own credentials, not a client's.
func (t *Transport) Call(ctx context.Context, to uint64, method string, req []byte) ([]byte, error) {
	t.mu.Lock()
	p := t.peers[to]
	t.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("call %s: %x is not a peer", method, to)
	}
	c, br, err := t.dial(ctx, p.getURLs(), p.hello(kindCall))
	if err != nil {
		return nil, fmt.Errorf("call %s on %x: %w", method, to, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(appendFrame(appendFrame(nil, []byte(method)), req)); err != nil {
		return nil, fmt.Errorf("call %s on %x: %w", method, to, err)
	}
	if err := readStatus(br); err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return nil, &CallError{Message: re.Reason}
		}
		return nil, fmt.Errorf("call %s on %x: %w", method, to, err)
	}
	resp, err := readFrame(br, nil)
	if err != nil {
		return nil, fmt.Errorf("call %s on %x: %w", method, to, err)
	}
	return resp, nil
}

func (t *Transport) answerQuery(c net.Conn) {
	if t.cfg.Query == nil {
		writeStatus(c, statusRefused, "this member answers no queries")
		return
	}
	b := []byte{statusOK}
	c.Write(appendFrame(b, t.cfg.Query()))
}

// readStream hands each message of a stream to Raft until the stream or
// the transport closes.
func (t *Transport) readStream(from uint64, br *bufio.Reader) {
	var buf []byte
	for {
		b, err := readFrame(br, buf)
		if err != nil {
			if t.ctx.Err() == nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Debug("peer stream ended", "peer", fmt.Sprintf("%x", from), "err", err)
			}
			return
		}
		buf = b
		m := &raftpb.Message{}
		if err := proto.Unmarshal(b, m); err != nil {
			t.log.Warn("peer stream: bad message", "peer", fmt.Sprintf("%x", from), "err", err)
			return
		}
		if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
			if t.ctx.Err() == nil {
				t.log.Debug("process peer message", "peer", fmt.Sprintf("%x", from), "err", err)
			}
			return
		}
	}
}

// readSnapshot receives one snapshot: the message, the data, then the
// answer.
func (t *Transport) readSnapshot(from uint64, c net.Conn, br *bufio.Reader) {
	c.SetReadDeadline(time.Now().Add(snapshotTimeout))
	b, err := readFrame(br, nil)
	if err != nil {
		t.log.Warn("receive snapshot", "peer", fmt.Sprintf("%x", from), "err", err)
		return
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil || m.GetType() != raftpb.MessageType_MsgSnap {
		t.log.Warn("receive snapshot: not a snapshot message", "peer", fmt.Sprintf("%x", from), "err", err)
		return
	}
	cr := &chunkReader{r: br}
	err = t.cfg.Raft.ReceiveSnapshot(m, deadlineReader{c, cr})
	if err == nil {
		err = cr.drain()
	}
	if err == nil {
		err = t.cfg.Raft.Process(t.ctx, m)
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err != nil {
		t.log.Warn("receive snapshot", "peer", fmt.Sprintf("%x", from), "snapshot-index", m.GetSnapshot().GetMetadata().GetIndex(), "err", err)
		writeStatus(c, statusFailed, err.Error())
		return
	}
	writeStatus(c, statusOK, "")
}

// deadlineReader pushes the read deadline forward while data keeps coming.
type deadlineReader struct {
	c net.Conn
	r io.Reader
}

func (d deadlineReader) Read(p []byte) (int, error) {
	d.c.SetReadDeadline(time.Now().Add(writeTimeout))
	return d.r.Read(p)
}

// dial connects to the first of urls that answers and says hello.
func (t *Transport) dial(ctx context.Context, urls []string, h hello) (net.Conn, *bufio.Reader, error) {
	var errs []error
	for _, u := range urls {
		c, br, err := dialOne(ctx, t.cfg.Dial, u, h)
		if err == nil {
			return c, br, nil
		}
		var re *RefusedError
		if errors.As(err, &re) {
			return nil, nil, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, nil, errors.New("no peer URLs")
	}
	return nil, nil, errors.Join(errs...)
}

func dialOne(ctx context.Context, dial DialFunc, peerURL string, h hello) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(peerURL)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("peer URL %q: want http://host:port", peerURL)
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	c, err := dial(dctx, u)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", peerURL, err)
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if _, err := c.Write(h.encode()); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("hello %s: %w", peerURL, err)
	}
	br := bufio.NewReader(c)
	if err := readStatus(br); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("hello %s: %w", peerURL, err)
	}
	c.SetDeadline(time.Time{})
	return c, br, nil
}

// Query asks the member at one of urls for its answer to a query (the
// member list): the way a joining member learns the cluster it joins. dial
// is DialPlain when nil.
func Query(ctx context.Context, dial DialFunc, urls []string) ([]byte, error) {
	if dial == nil {
		dial = DialPlain
	}
	var errs []error
	for _, u := range urls {
		c, br, err := dialOne(ctx, dial, u, hello{kind: kindQuery})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.SetReadDeadline(time.Now().Add(handshakeTimeout))
		b, err := readFrame(br, nil)
		c.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("query %s: %w", u, err))
			continue
		}
		return b, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("query: no peer URLs")
	}
	return nil, errors.Join(errs...)
}
