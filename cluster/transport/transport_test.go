package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// member is the Raft side of one test transport: it records what arrives
// and what is reported.
type member struct {
	id   uint64
	recv chan *raftpb.Message

	mu          sync.Mutex
	unreachable map[uint64]int
	snapReports []raft.SnapshotStatus
	snapData    []byte
	removedBy   []uint64
	removed     map[uint64]bool
	refuseSnap  error
}

func newMember(id uint64) *member {
	return &member{id: id, recv: make(chan *raftpb.Message, 10000), unreachable: map[uint64]int{}, removed: map[uint64]bool{}}
}

func (m *member) Process(ctx context.Context, msg *raftpb.Message) error {
	select {
	case m.recv <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *member) ReceiveSnapshot(msg *raftpb.Message, data io.Reader) error {
	b, err := io.ReadAll(data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		return err
	}
	if m.refuseSnap != nil {
		return m.refuseSnap
	}
	m.snapData = b
	return nil
}

func (m *member) IsRemoved(id uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removed[id]
}

func (m *member) ReportUnreachable(id uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unreachable[id]++
}

func (m *member) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snapReports = append(m.snapReports, s)
}

func (m *member) ReportRemoved(peer uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removedBy = append(m.removedBy, peer)
}

func (m *member) locked(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

type node struct {
	*member
	t   *Transport
	url string
}

func testLogger() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("TEND_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// startNode runs a transport for member id on addr (127.0.0.1:0 for any
// port).
func startNode(t *testing.T, id uint64, addr string, faults *Faults, snap func(io.Writer, *raftpb.Message) error) *node {
	t.Helper()
	return startNodeWith(t, id, addr, faults, snap, nil)
}

// startNodeWith is startNode with set, when not nil, changing the
// transport's Config first.
func startNodeWith(t *testing.T, id uint64, addr string, faults *Faults, snap func(io.Writer, *raftpb.Message) error, set func(*Config)) *node {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := newMember(id)
	cfg := Config{ID: id, ClusterID: 7, Raft: m, Faults: faults, WriteSnapshot: snap, Logger: testLogger(),
		Query: func() []byte { return []byte("members of 7") },
		Call: func(ctx context.Context, method string, req []byte) ([]byte, error) {
			if method == "echo" {
				return append([]byte(fmt.Sprintf("%d says ", id)), req...), nil
			}
			return nil, fmt.Errorf("no method %q", method)
		}}
	if set != nil {
		set(&cfg)
	}
	tr := New(cfg)
	done := make(chan error, 1)
	go func() { done <- tr.Serve(l) }()
	t.Cleanup(func() {
		tr.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &node{member: m, t: tr, url: "http://" + l.Addr().String()}
}

func connect(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			a.t.AddPeer(b.id, []string{b.url})
		}
	}
}

func msg(from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Index: proto.Uint64(index),
		Entries: []*raftpb.Entry{{Index: proto.Uint64(index), Data: bytes.Repeat([]byte{byte(index)}, 100)}}}
}

// expect reads n messages from ch and checks their indexes run on from
// first, in order.
func expect(t *testing.T, ch <-chan *raftpb.Message, first, n uint64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := first; i < first+n; i++ {
		select {
		case m := <-ch:
			if m.GetIndex() != i || len(m.GetEntries()) != 1 || m.GetEntries()[0].GetData()[0] != byte(i) {
				t.Fatalf("got message %d (%d entries), want %d", m.GetIndex(), len(m.GetEntries()), i)
			}
		case <-deadline:
			t.Fatalf("message %d did not arrive within 10s", i)
		}
	}
}

func expectNone(t *testing.T, ch <-chan *raftpb.Message, d time.Duration) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %d from %d", m.GetIndex(), m.GetFrom())
	case <-time.After(d):
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamsDeliverInOrderBothWays(t *testing.T) {
	a, b := startNode(t, 1, "127.0.0.1:0", nil, nil), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	const n = 3000
	go func() {
		for i := uint64(1); i <= n; i += 100 {
			var batch []*raftpb.Message
			for j := i; j < i+100; j++ {
				batch = append(batch, msg(1, 2, j))
			}
			a.t.Send(batch)
			time.Sleep(time.Millisecond) // keep within the queue
		}
	}()
	for i := uint64(1); i <= 10; i++ {
		b.t.Send([]*raftpb.Message{msg(2, 1, i)})
	}
	expect(t, b.recv, 1, n)
	expect(t, a.recv, 1, 10)
}

func TestReconnectsAfterPeerRestarts(t *testing.T) {
	a, b := startNode(t, 1, "127.0.0.1:0", nil, nil), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1)})
	expect(t, b.recv, 1, 1)

	addr := b.url[len("http://"):]
	b.t.Close()
	// While b is down, sends are lost and a tells Raft so.
	eventually(t, "unreachable reported", func() bool {
		a.t.Send([]*raftpb.Message{msg(1, 2, 99)})
		n := 0
		a.locked(func() { n = a.unreachable[2] })
		return n > 0 && a.t.ActiveSince(2).IsZero()
	})
	b2 := startNode(t, 2, addr, nil, nil)
	// The stream comes back on its own; messages sent after that arrive.
	eventually(t, "stream reconnected", func() bool { return !a.t.ActiveSince(2).IsZero() })
	a.t.Send([]*raftpb.Message{msg(1, 2, 2), msg(1, 2, 3)})
	for {
		select {
		case m := <-b2.recv:
			if m.GetIndex() == 99 {
				continue // sent while reconnecting
			}
			if m.GetIndex() != 2 {
				t.Fatalf("got %d, want 2", m.GetIndex())
			}
			expect(t, b2.recv, 3, 1)
			return
		case <-time.After(10 * time.Second):
			t.Fatal("no message after reconnect")
		}
	}
}

func TestFaultsDropAndDelayOneDirection(t *testing.T) {
	f := NewFaults()
	a, b := startNode(t, 1, "127.0.0.1:0", f, nil), startNode(t, 2, "127.0.0.1:0", f, nil)
	connect(a, b)

	f.Cut(1, 2)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1)})
	b.t.Send([]*raftpb.Message{msg(2, 1, 1)})
	expect(t, a.recv, 1, 1) // the other direction still works
	expectNone(t, b.recv, 200*time.Millisecond)

	f.Heal()
	a.t.Send([]*raftpb.Message{msg(1, 2, 2)})
	expect(t, b.recv, 2, 1)

	const d = 300 * time.Millisecond
	f.Delay(1, 2, d)
	start := time.Now()
	a.t.Send([]*raftpb.Message{msg(1, 2, 3), msg(1, 2, 4)})
	expect(t, b.recv, 3, 2)
	if took := time.Since(start); took < d {
		t.Fatalf("delayed messages arrived after %v, want at least %v", took, d)
	}

	f.Heal()
	f.Partition([]uint64{1}, []uint64{2})
	a.t.Send([]*raftpb.Message{msg(1, 2, 5)})
	b.t.Send([]*raftpb.Message{msg(2, 1, 5)})
	expectNone(t, a.recv, 100*time.Millisecond)
	expectNone(t, b.recv, 100*time.Millisecond)
}

func TestSnapshotOnItsOwnConnection(t *testing.T) {
	data := bytes.Repeat([]byte("snapshot-data-"), 300_000) // ~4 MB
	started, release := make(chan struct{}), make(chan struct{})
	writeSnap := func(w io.Writer, m *raftpb.Message) error {
		close(started)
		<-release
		_, err := w.Write(data)
		return err
	}
	a, b := startNode(t, 1, "127.0.0.1:0", nil, writeSnap), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	snap := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(500), Term: proto.Uint64(3)}, Data: []byte("members")}}
	a.t.Send([]*raftpb.Message{snap})
	<-started
	// While the snapshot is stuck, the stream still carries messages.
	a.t.Send([]*raftpb.Message{msg(1, 2, 1), msg(1, 2, 2)})
	expect(t, b.recv, 1, 2)
	close(release)
	select {
	case m := <-b.recv:
		if m.GetType() != raftpb.MessageType_MsgSnap || m.GetSnapshot().GetMetadata().GetIndex() != 500 || string(m.GetSnapshot().GetData()) != "members" {
			t.Fatalf("got %v, want the snapshot message", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot message did not arrive")
	}
	b.locked(func() {
		if !bytes.Equal(b.snapData, data) {
			t.Errorf("received %d bytes of snapshot data, want %d", len(b.snapData), len(data))
		}
	})
	eventually(t, "snapshot reported", func() bool {
		var r []raft.SnapshotStatus
		a.locked(func() { r = a.snapReports })
		return len(r) == 1 && r[0] == raft.SnapshotFinish
	})
}

func TestSnapshotFailureIsReported(t *testing.T) {
	f := NewFaults()
	a := startNode(t, 1, "127.0.0.1:0", f, func(w io.Writer, m *raftpb.Message) error { _, err := w.Write([]byte("x")); return err })
	b := startNode(t, 2, "127.0.0.1:0", f, nil)
	connect(a, b)
	b.locked(func() { b.refuseSnap = errors.New("disk full") })
	snap := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1)}}}
	a.t.Send([]*raftpb.Message{snap})
	eventually(t, "failure reported", func() bool {
		var r []raft.SnapshotStatus
		a.locked(func() { r = a.snapReports })
		return len(r) == 1 && r[0] == raft.SnapshotFailure
	})
	f.Cut(1, 2)
	a.t.Send([]*raftpb.Message{snap})
	eventually(t, "failure over a cut link reported", func() bool {
		var r []raft.SnapshotStatus
		a.locked(func() { r = a.snapReports })
		return len(r) == 2 && r[1] == raft.SnapshotFailure
	})
	expectNone(t, b.recv, 50*time.Millisecond)
}

func TestRefusals(t *testing.T) {
	a, b := startNode(t, 1, "127.0.0.1:0", nil, nil), startNode(t, 2, "127.0.0.1:0", nil, nil)
	b.locked(func() { b.removed[1] = true })
	connect(a, b)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1)})
	eventually(t, "removal reported", func() bool {
		n := 0
		a.locked(func() { n = len(a.removedBy) })
		return n > 0
	})
	expectNone(t, b.recv, 50*time.Millisecond)

	// A member of another cluster is refused.
	other := New(Config{ID: 3, ClusterID: 8, Raft: newMember(3), Logger: testLogger()})
	defer other.Close()
	other.AddPeer(2, []string{b.url})
	other.Send([]*raftpb.Message{msg(3, 2, 1)})
	expectNone(t, b.recv, 200*time.Millisecond)

	got, err := Query(context.Background(), nil, []string{"http://127.0.0.1:1", b.url})
	if err != nil || string(got) != "members of 7" {
		t.Fatalf("Query = %q, %v", got, err)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	a, b := startNode(t, 1, "127.0.0.1:0", nil, nil), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1)})
	expect(t, b.recv, 1, 1)
	done := make(chan struct{})
	go func() { a.t.Close(); b.t.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	a.t.Send([]*raftpb.Message{msg(1, 2, 2)}) // no panic, no effect
	a.t.AddPeer(3, []string{b.url})
	if len(a.t.Peers()) != 0 {
		t.Fatalf("peers after Close: %v", a.t.Peers())
	}
}

// TestReorderSwapsNeighbours: a reordering link delivers each pair of
// messages the other way round, and a lone message still arrives.
func TestReorderSwapsNeighbours(t *testing.T) {
	f := NewFaults()
	a, b := startNode(t, 1, "127.0.0.1:0", f, nil), startNode(t, 2, "127.0.0.1:0", f, nil)
	connect(a, b)
	f.Set(1, 2, Link{Reorder: true})
	a.t.Send([]*raftpb.Message{msg(1, 2, 1), msg(1, 2, 2)})
	var got []uint64
	for range 2 {
		select {
		case m := <-b.recv:
			got = append(got, m.GetIndex())
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v, want two messages", got)
		}
	}
	if got[0] != 2 || got[1] != 1 {
		t.Fatalf("received indexes %v, want [2 1]", got)
	}
	a.t.Send([]*raftpb.Message{msg(1, 2, 3)})
	expect(t, b.recv, 3, 1)
}

// TestCall: one request to a peer, its answer or its error's text back.
func TestCall(t *testing.T) {
	a, b := startNode(t, 1, "127.0.0.1:0", nil, nil), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := a.t.Call(ctx, 2, "echo", []byte("hello"))
	if err != nil || string(resp) != "2 says hello" {
		t.Fatalf("call echo = %q, %v", resp, err)
	}
	_, err = a.t.Call(ctx, 2, "nope", nil)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Message != `no method "nope"` {
		t.Fatalf("call nope: %v, want the peer's error", err)
	}
	if _, err := a.t.Call(ctx, 9, "echo", nil); err == nil {
		t.Fatal("call to a stranger succeeded")
	}
}

// TestFlapTurns: a flapping link is down for one period, up for the next,
// and so on from when it was set, in its direction only; Heal ends it.
func TestFlapTurns(t *testing.T) {
	f := NewFaults()
	now := time.Unix(1000, 0)
	f.now = func() time.Time { return now }
	const period = 100 * time.Millisecond
	f.Flap(1, 2, period)
	set := now
	for _, tc := range []struct {
		at   time.Duration
		down bool
	}{{0, true}, {99 * time.Millisecond, true}, {100 * time.Millisecond, false}, {199 * time.Millisecond, false},
		{200 * time.Millisecond, true}, {350 * time.Millisecond, false}, {10*time.Second + 50*time.Millisecond, true}} {
		now = set.Add(tc.at)
		if l := f.Link(1, 2); l.Drop != tc.down || l.Flap != period {
			t.Errorf("%v after Flap: link %+v, want down %v", tc.at, l, tc.down)
		}
		if l := f.Link(2, 1); l != (Link{}) {
			t.Errorf("%v after Flap: the other direction is %+v, want healthy", tc.at, l)
		}
	}
	f.Heal()
	if l := f.Link(1, 2); l != (Link{}) {
		t.Errorf("after Heal: %+v, want healthy", l)
	}
}

// TestFlapOverStream sends a message every few milliseconds over a link
// that flaps: what arrives comes in runs separated by runs of losses — the
// link failed and recovered more than once — and once healed everything
// arrives again.
func TestFlapOverStream(t *testing.T) {
	f := NewFaults()
	a, b := startNode(t, 1, "127.0.0.1:0", f, nil), startNode(t, 2, "127.0.0.1:0", f, nil)
	connect(a, b)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1)})
	expect(t, b.recv, 1, 1) // the stream is up
	const period, n = 150 * time.Millisecond, 100
	f.Flap(1, 2, period)
	tick := time.NewTicker(period / 10)
	defer tick.Stop()
	for i := uint64(2); i < 2+n; i++ {
		<-tick.C
		a.t.Send([]*raftpb.Message{msg(1, 2, i)})
	}
	f.Heal()
	const last = 2 + n
	a.t.Send([]*raftpb.Message{msg(1, 2, last)})
	// The stream keeps order: once the last arrives, all that arrived
	// before it is in.
	got := map[uint64]bool{}
	deadline := time.After(10 * time.Second)
	for !got[last] {
		select {
		case m := <-b.recv:
			got[m.GetIndex()] = true
		case <-deadline:
			t.Fatalf("message %d sent after Heal did not arrive within 10s", last)
		}
	}
	// Runs of delivered and lost messages among those sent while it flapped.
	var runs []bool
	for i := uint64(2); i < last; i++ {
		if len(runs) == 0 || runs[len(runs)-1] != got[i] {
			runs = append(runs, got[i])
		}
	}
	delivered, lost := 0, 0
	for _, r := range runs {
		if r {
			delivered++
		} else {
			lost++
		}
	}
	t.Logf("%d messages over %v: runs %v", n, time.Duration(n)*period/10, runs)
	if delivered < 2 || lost < 2 {
		t.Fatalf("while flapping with period %v for %v: %d runs delivered, %d runs lost, want at least 2 of each", period, time.Duration(n)*period/10, delivered, lost)
	}
}

// TestReconnectBackoff dials a closed port and counts the stream's
// attempts: each waits at least the backoff, which doubles from minBackoff
// to maxBackoff (no busy loop), and no two are much more than maxBackoff
// apart (it keeps trying).
func TestReconnectBackoff(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	var mu sync.Mutex
	var dials []time.Time
	dial := func(ctx context.Context, u *url.URL) (net.Conn, error) {
		mu.Lock()
		dials = append(dials, time.Now())
		mu.Unlock()
		return DialPlain(ctx, u)
	}
	m := newMember(1)
	tr := New(Config{ID: 1, ClusterID: 7, Raft: m, Dial: dial, Logger: testLogger()})
	defer tr.Close()
	start := time.Now()
	tr.AddPeer(2, []string{closed})
	const attempts = 10
	eventually(t, fmt.Sprintf("%d dial attempts", attempts), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(dials) >= attempts
	})
	tr.RemovePeer(2)
	mu.Lock()
	got := slices.Clone(dials[:attempts])
	mu.Unlock()
	window := got[attempts-1].Sub(start)
	t.Logf("%d attempts in %v", attempts, window)
	// A loaded machine runs timers late, never early: the lower bound is
	// exact, the upper one has room.
	const slack = time.Second
	wait := minBackoff
	for i := 1; i < attempts; i++ {
		gap := got[i].Sub(got[i-1])
		if gap < wait {
			t.Errorf("attempt %d came %v after the one before, want at least the backoff %v", i+1, gap, wait)
		}
		if gap > maxBackoff+slack {
			t.Errorf("attempt %d came %v after the one before, want at most about %v", i+1, gap, maxBackoff)
		}
		wait = min(2*wait, maxBackoff)
	}
	if n := m.unreachableCount(2); n < attempts-1 {
		t.Errorf("%d failed dials reported %d times unreachable", attempts, n)
	}
}

func (m *member) unreachableCount(id uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unreachable[id]
}
