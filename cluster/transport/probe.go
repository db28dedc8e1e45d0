package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

const (
	// defaultProbeInterval is how often a peer's round trip is measured,
	// as etcd's prober does (its stream read timeout less a second).
	defaultProbeInterval = 4 * time.Second
	// maxProbeWait bounds the wait for a probe's answer; one that takes
	// longer is lost.
	maxProbeWait = 5 * time.Second
	// maxProbe bounds a probe frame (8 bytes today; room to grow).
	maxProbe = 64
)

// runProbes measures the round trip to the peer every interval over a
// probe connection of its own and passes each to observe, until the peer
// stops. A probe that is not answered in time is lost: its connection is
// closed and the next probe dials again.
func (p *peer) runProbes(observe func(peer uint64, rtt time.Duration), interval time.Duration) {
	wait := min(interval, maxProbeWait)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var pc *probeConn
	defer func() { pc.close() }()
	var seq uint64
	for {
		if pc == nil {
			c, br, err := p.t.dial(p.ctx, p.getURLs(), p.hello(kindProbe))
			if err == nil {
				pc = &probeConn{c: c, br: br, stop: context.AfterFunc(p.ctx, func() { c.Close() })}
			} else if p.ctx.Err() == nil {
				p.t.log.Debug("probe peer", "peer", fmt.Sprintf("%x", p.id), "err", err)
			}
		}
		if pc != nil {
			seq++
			rtt, sent, err := p.probe(pc, seq, wait)
			switch {
			case err != nil:
				if p.ctx.Err() == nil {
					p.t.log.Debug("probe peer", "peer", fmt.Sprintf("%x", p.id), "err", err)
				}
				pc.close()
				pc = nil
			case sent:
				observe(p.id, rtt)
			}
		}
		select {
		case <-tick.C:
		case <-p.ctx.Done():
			return
		}
	}
}

// probeConn is the prober's connection to a peer.
type probeConn struct {
	c    net.Conn
	br   *bufio.Reader
	stop func() bool // ends the close on stop
}

func (pc *probeConn) close() {
	if pc != nil {
		pc.stop()
		pc.c.Close()
	}
}

// probe sends one probe frame and reads its echo. A link Faults cuts loses
// the probe (sent is false); one it delays is late by the delay.
func (p *peer) probe(pc *probeConn, seq uint64, wait time.Duration) (rtt time.Duration, sent bool, err error) {
	link := p.t.cfg.Faults.Link(p.t.cfg.ID, p.id)
	if link.Drop {
		return 0, false, nil
	}
	start := time.Now()
	pc.c.SetDeadline(start.Add(wait))
	if link.Delay > 0 && !p.sleep(link.Delay) {
		return 0, false, p.ctx.Err()
	}
	ping := binary.BigEndian.AppendUint64(nil, seq)
	if _, err := pc.c.Write(appendFrame(nil, ping)); err != nil {
		return 0, false, fmt.Errorf("write probe: %w", err)
	}
	b, err := readFrameMax(pc.br, nil, maxProbe)
	if err != nil {
		return 0, false, fmt.Errorf("read probe answer: %w", err)
	}
	rtt = time.Since(start)
	if len(b) != 8 || binary.BigEndian.Uint64(b) != seq {
		return 0, false, errors.New("probe answer does not echo the probe")
	}
	return rtt, true, nil
}

// answerProbes echoes each probe frame of a probe connection until it or
// the transport closes. A link Faults cuts loses the answer; one it delays
// delays it.
func (t *Transport) answerProbes(from uint64, c net.Conn, br *bufio.Reader) {
	var buf, out []byte
	for {
		b, err := readFrameMax(br, buf, maxProbe)
		if err != nil {
			return
		}
		buf = b
		link := t.cfg.Faults.Link(t.cfg.ID, from)
		if link.Drop {
			continue
		}
		if link.Delay > 0 {
			tm := time.NewTimer(link.Delay)
			select {
			case <-tm.C:
			case <-t.ctx.Done():
				tm.Stop()
				return
			}
		}
		out = appendFrame(out[:0], b)
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
