package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// queued is a message waiting for its stream, with when it was sent (a
// delayed link counts from then).
type queued struct {
	m  *raftpb.Message
	at time.Time
}

// peer sends to one other member: a stream goroutine for messages, a
// snapshot goroutine for MsgSnap and, with Config.ObserveRTT, a prober,
// all stopped by stop.
type peer struct {
	t  *Transport
	id uint64
	st *peerStats

	msgc  chan queued
	snapc chan *raftpb.Message

	mu       sync.Mutex
	urls     []string  // guarded by mu
	active   time.Time // guarded by mu: when the stream connected; zero when down
	lastDrop time.Time // guarded by mu: when a full queue was last logged

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newPeer(t *Transport, id uint64, urls []string, st *peerStats) *peer {
	p := &peer{
		t:     t,
		id:    id,
		st:    st,
		msgc:  make(chan queued, queueSize),
		snapc: make(chan *raftpb.Message, 1),
		urls:  slices.Clone(urls),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

// start runs the peer's goroutines; stop ends them.
func (p *peer) start() {
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.runStream() }()
	go func() { defer p.wg.Done(); p.runSnapshots() }()
	if observe := p.t.cfg.ObserveRTT; observe != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.runProbes(observe, p.t.cfg.ProbeInterval) }()
	}
}

func (p *peer) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *peer) setURLs(urls []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls = slices.Clone(urls)
}

func (p *peer) getURLs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.urls
}

func (p *peer) activeSince() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

func (p *peer) setActive(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active = at
}

func (p *peer) hello(kind byte) hello {
	return hello{kind: kind, cluster: p.t.cfg.ClusterID, from: p.t.cfg.ID, to: p.id}
}

// dropped handles a message the full queue could not take.
func (p *peer) dropped(m *raftpb.Message) {
	p.lost(1)
	p.t.cfg.Raft.ReportUnreachable(p.id)
	p.mu.Lock()
	log := time.Since(p.lastDrop) > time.Second
	if log {
		p.lastDrop = time.Now()
	}
	p.mu.Unlock()
	if log {
		p.t.log.Warn("dropped message: peer queue full", "peer", fmt.Sprintf("%x", p.id), "type", m.GetType().String())
	}
}

// runStream keeps one outgoing stream connected and writes queued messages
// to it until the peer stops.
func (p *peer) runStream() {
	backoff := minBackoff
	down := false // logged as down since the last connection
	for p.ctx.Err() == nil {
		c, _, err := p.t.dial(p.ctx, p.getURLs(), p.hello(kindStream))
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.refused(err)
			if !down {
				p.t.log.Warn("peer unreachable", "peer", fmt.Sprintf("%x", p.id), "err", err)
				down = true
			}
			// What waited is stale by the next try; Raft sends again.
			p.drain()
			p.t.cfg.Raft.ReportUnreachable(p.id)
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if down {
			p.t.log.Info("peer reachable again", "peer", fmt.Sprintf("%x", p.id))
			down = false
		}
		backoff = minBackoff
		p.setActive(time.Now())
		err = p.write(c)
		p.setActive(time.Time{})
		c.Close()
		if p.ctx.Err() != nil {
			return
		}
		p.t.log.Warn("peer stream broke", "peer", fmt.Sprintf("%x", p.id), "err", err)
		down = true
		p.t.cfg.Raft.ReportUnreachable(p.id)
	}
}

// refused passes a peer's "you were removed" on to the member.
func (p *peer) refused(err error) {
	var re *RefusedError
	if errors.As(err, &re) && re.Removed {
		p.t.cfg.Raft.ReportRemoved(p.id)
	}
}

// drain drops what waits in the queue, each a message that could not be
// sent.
func (p *peer) drain() {
	n := 0
	defer func() { p.lost(n) }()
	for {
		select {
		case <-p.msgc:
			n++
		default:
			return
		}
	}
}

// sleep waits d; false when the peer stopped first.
func (p *peer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

// reorderHold bounds how long a reordering link holds a message back
// while waiting for the next one to overtake it.
const reorderHold = 5 * time.Millisecond

// write sends queued messages over c, flushing whenever the queue runs
// empty, until a write fails or the peer stops. The messages a failed
// write loses are counted as send failures.
func (p *peer) write(c net.Conn) (err error) {
	bw := bufio.NewWriterSize(sendWriter{c, &p.st.sent}, 64<<10)
	// unflushed counts the messages written into bw since the last flush:
	// lost if a write fails.
	var unflushed int
	// held is the message a reordering link keeps back until the next one
	// has gone first (or reorderHold passes).
	var held *raftpb.Message
	var heldTimer <-chan time.Time
	defer func() {
		if err == nil {
			return
		}
		if held != nil {
			unflushed++
		}
		p.lost(unflushed)
	}()
	flush := func() error {
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		unflushed = 0
		return nil
	}
	var frame []byte
	send := func(m *raftpb.Message) error {
		var err error
		frame, err = marshalFrame(frame[:0], m)
		if err != nil {
			p.lost(1)
			p.t.log.Error("encode message", "peer", fmt.Sprintf("%x", p.id), "err", err)
			return nil
		}
		unflushed++
		_, err = bw.Write(frame)
		return err
	}
	for {
		var q queued
		select {
		case q = <-p.msgc:
		case <-heldTimer:
			m := held
			held, heldTimer = nil, nil
			if err := send(m); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
			continue
		case <-p.ctx.Done():
			return nil
		}
		link := p.t.cfg.Faults.Link(p.t.cfg.ID, p.id)
		if link.Drop {
			if len(p.msgc) == 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if wait := time.Until(q.at.Add(link.Delay)); link.Delay > 0 && wait > 0 {
			if err := flush(); err != nil {
				return err
			}
			if !p.sleep(wait) {
				return nil
			}
		}
		if link.Reorder && held == nil {
			held, heldTimer = q.m, time.After(reorderHold)
			continue
		}
		if err := send(q.m); err != nil {
			return err
		}
		if held != nil {
			m := held
			held, heldTimer = nil, nil
			if err := send(m); err != nil {
				return err
			}
		}
		if len(p.msgc) == 0 || bw.Buffered() >= flushSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

func marshalFrame(b []byte, m *raftpb.Message) ([]byte, error) {
	data, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return appendFrame(b, data), nil
}

// runSnapshots sends snapshot messages, each over a connection of its own,
// and reports each outcome to Raft.
func (p *peer) runSnapshots() {
	for {
		var m *raftpb.Message
		select {
		case m = <-p.snapc:
		case <-p.ctx.Done():
			return
		}
		status := raft.SnapshotFinish
		if err := p.sendSnapshot(m); err != nil {
			status = raft.SnapshotFailure
			if p.ctx.Err() != nil {
				return
			}
			if !errors.Is(err, errCut) {
				p.lost(1)
			}
			p.refused(err)
			p.t.log.Warn("send snapshot", "peer", fmt.Sprintf("%x", p.id), "snapshot-index", m.GetSnapshot().GetMetadata().GetIndex(), "err", err)
		} else {
			p.t.log.Info("sent snapshot", "peer", fmt.Sprintf("%x", p.id), "snapshot-index", m.GetSnapshot().GetMetadata().GetIndex())
		}
		p.t.cfg.Raft.ReportSnapshot(p.id, status)
	}
}

// errCut is a snapshot lost to a link Faults cut: the network's loss, not
// a failure to send.
var errCut = errors.New("link cut by fault injection")

func (p *peer) sendSnapshot(m *raftpb.Message) error {
	if p.t.cfg.Faults.Link(p.t.cfg.ID, p.id).Drop {
		return errCut
	}
	c, br, err := p.t.dial(p.ctx, p.getURLs(), p.hello(kindSnapshot))
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(p.ctx, func() { c.Close() })
	defer stop()
	bw := bufio.NewWriterSize(sendWriter{c, &p.st.sent}, 64<<10)
	frame, err := marshalFrame(nil, m)
	if err != nil {
		return fmt.Errorf("encode snapshot message: %w", err)
	}
	if _, err := bw.Write(frame); err != nil {
		return fmt.Errorf("write snapshot message: %w", err)
	}
	cw := chunkWriter{bw}
	if p.t.cfg.WriteSnapshot != nil {
		if err := p.t.cfg.WriteSnapshot(cw, m); err != nil {
			return fmt.Errorf("write snapshot data: %w", err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("write snapshot data: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot data: %w", err)
	}
	c.SetReadDeadline(time.Now().Add(snapshotTimeout))
	if err := readStatus(br); err != nil {
		return fmt.Errorf("peer did not take the snapshot: %w", err)
	}
	return nil
}
