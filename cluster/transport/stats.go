package transport

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// PeerStats is what the transport counted for one peer since it was added
// (etcd's etcd_network_peer_* counters).
type PeerStats struct {
	// SentBytes is the frame bytes written to the peer on stream and
	// snapshot connections, snapshot data included.
	SentBytes uint64
	// ReceivedBytes is the frame bytes read from the peer on its stream
	// and snapshot connections.
	ReceivedBytes uint64
	// SentFailures counts the messages to the peer that could not be sent:
	// dropped from a full queue, lost with a failed dial or write, or a
	// snapshot that failed. What Faults drops is the network losing it,
	// not a failure to send, and is not counted.
	SentFailures uint64
}

// peerStats are one peer's counters, shared by its outgoing goroutines and
// the connections it opened to this member.
type peerStats struct {
	sent, received, failures atomic.Uint64
}

// PeerStats returns the counters of every peer, by ID: of each peer added,
// and of each member that connected to this one. A removed peer's
// counters go with it.
func (t *Transport) PeerStats() map[uint64]PeerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]PeerStats, len(t.stats))
	for id, s := range t.stats {
		out[id] = PeerStats{SentBytes: s.sent.Load(), ReceivedBytes: s.received.Load(), SentFailures: s.failures.Load()}
	}
	return out
}

// statsLocked returns id's counters, made on first use.
func (t *Transport) statsLocked(id uint64) *peerStats {
	s := t.stats[id]
	if s == nil {
		s = &peerStats{}
		t.stats[id] = s
	}
	return s
}

func (t *Transport) statsOf(id uint64) *peerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.statsLocked(id)
}

// lost counts msgs messages to the peer that could not be sent.
func (p *peer) lost(msgs int) {
	if msgs > 0 {
		p.st.failures.Add(uint64(msgs))
	}
}

// sendWriter writes to a peer connection, counting what was written and
// pushing the write deadline forward with every write (a bufio.Writer
// flushes on its own when a message fills it, long after the last
// explicit flush set a deadline).
type sendWriter struct {
	c    net.Conn
	sent *atomic.Uint64
}

func (w sendWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := w.c.Write(p)
	w.sent.Add(uint64(n))
	return n, err
}

// countReader counts what is read from a peer connection.
type countReader struct {
	r        io.Reader
	received *atomic.Uint64
}

func (r countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.received.Add(uint64(n))
	return n, err
}
