package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testProbeInterval = 25 * time.Millisecond

// rtts records what a transport's ObserveRTT sees.
type rtts struct {
	closed atomic.Bool // set once the transport's Close returned

	mu  sync.Mutex
	n   map[uint64]int // guarded by mu: observations by peer
	bad []string       // guarded by mu
}

func newRTTs() *rtts { return &rtts{n: map[uint64]int{}} }

func (r *rtts) observe(peer uint64, rtt time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		r.bad = append(r.bad, fmt.Sprintf("peer %x observed after Close", peer))
	}
	// Loopback answers in well under a millisecond; a loaded -race run
	// stays far below this.
	if rtt <= 0 || rtt >= 500*time.Millisecond {
		r.bad = append(r.bad, fmt.Sprintf("peer %x: round trip %v on loopback", peer, rtt))
	}
	r.n[peer]++
}

func (r *rtts) count(peer uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[peer]
}

func (r *rtts) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		t.Error(b)
	}
}

// awaitProbes waits until r has observed peer n more times than now.
func (r *rtts) awaitProbes(t *testing.T, peer uint64, n int) {
	t.Helper()
	want := r.count(peer) + n
	eventually(t, fmt.Sprintf("%d observations of %x", want, peer), func() bool { return r.count(peer) >= want })
}

func startProbing(t *testing.T, id uint64, faults *Faults, r *rtts) *node {
	t.Helper()
	return startNodeWith(t, id, "127.0.0.1:0", faults, nil, func(c *Config) {
		c.ObserveRTT = r.observe
		c.ProbeInterval = testProbeInterval
	})
}

// TestObserveRTT: every member observes a positive round trip to each
// peer, again and again; none after the peer is removed or the transport
// closed.
func TestObserveRTT(t *testing.T) {
	ra, rb, rc := newRTTs(), newRTTs(), newRTTs()
	a, b, c := startProbing(t, 1, nil, ra), startProbing(t, 2, nil, rb), startProbing(t, 3, nil, rc)
	connect(a, b, c)
	for _, x := range []struct {
		r     *rtts
		peers []uint64
	}{{ra, []uint64{2, 3}}, {rb, []uint64{1, 3}}, {rc, []uint64{1, 2}}} {
		for _, p := range x.peers {
			x.r.awaitProbes(t, p, 3)
		}
	}

	a.t.RemovePeer(3)
	removed := ra.count(3)
	ra.awaitProbes(t, 2, 3)
	if n := ra.count(3); n != removed {
		t.Errorf("%d observations of peer 3 after RemovePeer returned", n-removed)
	}

	a.t.Close()
	ra.closed.Store(true)
	rb.awaitProbes(t, 3, 3) // a would have probed in this time
	for _, r := range []*rtts{ra, rb, rc} {
		r.check(t)
	}
}

// fakePeer answers every hello and then never a probe: silently, as a
// member that lost the answers, or by closing the probe connection, as a
// member older than probes does.
type fakePeer struct {
	url    string
	probes atomic.Int32 // probe connections accepted

	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
}

func startFakePeer(t *testing.T, old bool) *fakePeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{url: "http://" + l.Addr().String(), l: l, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				h, err := readHello(c)
				if err != nil || writeStatus(c, statusOK, "") != nil {
					return
				}
				if h.kind == kindProbe {
					f.probes.Add(1)
					if old {
						return
					}
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// TestProbeUnanswered: a peer that does not answer probes, one that
// closes the probe connection (an older member), one nobody listens for,
// and one behind a cut link (either way) are never observed, while a
// healthy peer is; the older member's stream stays up.
func TestProbeUnanswered(t *testing.T) {
	faults := NewFaults()
	r := newRTTs()
	a := startProbing(t, 1, faults, r)
	silent, old := startFakePeer(t, false), startFakePeer(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	healthy := startNode(t, 5, "127.0.0.1:0", faults, nil)
	cutTo := startNode(t, 6, "127.0.0.1:0", faults, nil)
	cutFrom := startNode(t, 7, "127.0.0.1:0", faults, nil)
	faults.Cut(1, 6)
	faults.Cut(7, 1)

	a.t.AddPeer(2, []string{silent.url})
	a.t.AddPeer(3, []string{old.url})
	a.t.AddPeer(4, []string{dead})
	for _, n := range []*node{healthy, cutTo, cutFrom} {
		a.t.AddPeer(n.id, []string{n.url})
	}
	// Each of these probe connections follows one that failed.
	eventually(t, "3 probe connections to each fake peer", func() bool {
		return silent.probes.Load() >= 3 && old.probes.Load() >= 3
	})
	r.awaitProbes(t, 5, 3)
	for _, id := range []uint64{2, 3, 4, 6, 7} {
		if n := r.count(id); n != 0 {
			t.Errorf("peer %d observed %d times, want never", id, n)
		}
	}
	if a.t.ActiveSince(3).IsZero() {
		t.Error("the stream to the older member is down")
	}
	r.check(t)
}

// TestUnknownKindRefused: a connection of a kind this member does not
// know (a newer member's) is refused with a reason.
func TestUnknownKindRefused(t *testing.T) {
	b := startNode(t, 2, "127.0.0.1:0", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := dialOne(ctx, DialPlain, b.url, hello{kind: 99, cluster: 7, from: 1, to: 2})
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "unknown connection kind 99") {
		t.Fatalf("dial with kind 99: %v, want a refusal naming the kind", err)
	}
}
