package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/internal/freeport"
)

// The linearizability check: clients bound to different members run puts,
// gets, compare-and-swaps and deletes on a few keys while the network and
// the members fail; porcupine then searches the recorded history for a
// sequential order that explains every answer. Writes whose outcome is
// unknown (a timeout) may take effect at any time after they were sent.

type kvOp uint8

const (
	opGet kvOp = iota
	opPut
	opCAS
	opDelete
)

type kvInput struct {
	op       kvOp
	key      string
	value    string // put, CAS: the new value
	expected string // CAS: the value compared with ("" is absent)
}

type kvOutput struct {
	unknown bool   // the call failed: a write may or may not have happened
	value   string // get: "" is absent
	ok      bool   // CAS: succeeded; delete: a key was deleted
}

// kvModel is one key's register; histories are partitioned by key.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.op {
		case opGet:
			return out.value == s, s
		case opPut:
			return true, in.value
		case opCAS:
			if out.unknown {
				if s == in.expected {
					return true, in.value
				}
				return true, s
			}
			if out.ok {
				return s == in.expected, in.value
			}
			return s != in.expected, s
		case opDelete:
			if out.unknown {
				return true, ""
			}
			return out.ok == (s != ""), ""
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%d %s %q %q -> %+v", in.op, in.key, in.value, in.expected, out)
	},
}

// history records operations from many clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(client int, in kvInput, call int64, out kvOutput, err error) {
	ret := h.now()
	if err != nil {
		if in.op == opGet {
			return // a failed read changed nothing and saw nothing
		}
		out = kvOutput{unknown: true}
		ret = math.MaxInt64 // it may take effect at any time from now on
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// linKeys is how many keys the clients share: few enough that they contend,
// enough that each key's history (porcupine checks keys apart) stays small
// when faults leave many writes with unknown outcomes.
const linKeys = 8

// runClient performs n random operations through endpoint.
func runClient(ctx context.Context, t *testing.T, h *history, id int, endpoint string, n int, seed uint64) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Error(err)
		return
	}
	defer cli.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	last := map[string]string{} // the last value this client saw per key
	for i := 0; i < n && ctx.Err() == nil; i++ {
		key := fmt.Sprintf("/lin/k%d", rng.IntN(linKeys))
		in := kvInput{key: key, value: fmt.Sprintf("c%d-%d", id, i)}
		switch r := rng.IntN(10); {
		case r < 4:
			in.op = opGet
		case r < 7:
			in.op = opPut
		case r < 9:
			in.op, in.expected = opCAS, last[key]
		default:
			in.op = opDelete
		}
		call := h.now()
		octx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		var out kvOutput
		switch in.op {
		case opGet:
			var r *clientv3.GetResponse
			if r, err = cli.Get(octx, key); err == nil && len(r.Kvs) == 1 {
				out.value = string(r.Kvs[0].Value)
				last[key] = out.value
			}
		case opPut:
			_, err = cli.Put(octx, key, in.value)
		case opCAS:
			cmp := clientv3.Compare(clientv3.Value(key), "=", in.expected)
			if in.expected == "" {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			var r *clientv3.TxnResponse
			if r, err = cli.Txn(octx).If(cmp).Then(clientv3.OpPut(key, in.value)).Commit(); err == nil {
				out.ok = r.Succeeded
			}
		case opDelete:
			var r *clientv3.DeleteResponse
			if r, err = cli.Delete(octx, key); err == nil {
				out.ok = r.Deleted == 1
			}
		}
		cancel()
		h.add(id, in, call, out, err)
	}
}

// endKey is written last; a watcher stops once it sees it.
const endKey = "/lin/end"

// watchAll records, through one member's own endpoint, every event under
// /lin/ from revision 1 until it sees endKey or ctx ends.
func watchAll(ctx context.Context, endpoint string) <-chan []*clientv3.Event {
	out := make(chan []*clientv3.Event, 1)
	go func() {
		var evs []*clientv3.Event
		defer func() { out <- evs }()
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return
		}
		defer cli.Close()
		wctx := clientv3.WithRequireLeader(ctx)
		rev := int64(1)
		for ctx.Err() == nil {
			for wr := range cli.Watch(wctx, "/lin/", clientv3.WithPrefix(), clientv3.WithRev(rev)) {
				for _, ev := range wr.Events {
					evs = append(evs, ev)
					rev = ev.Kv.ModRevision + 1
					if string(ev.Kv.Key) == endKey {
						return
					}
				}
			}
		}
	}()
	return out
}

// TestLinearizable runs clients on every member of a three-member cluster
// through a leader isolation, a member restart, a one-way cut and a slow,
// reordering link, and checks the history with porcupine; then checks that
// every member's watch stream carried the same events in the same order,
// with no gap or duplicate.
func TestLinearizable(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	c := newTestCluster(t, 3)
	c.waitLeader()
	ids := c.ids()
	eps := make([]string, 3)
	for i := range 3 {
		eps[i] = c.member(i).ClientURLs()[0]
	}
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var watches []<-chan []*clientv3.Event
	for i := range 3 {
		watches = append(watches, watchAll(wctx, eps[i]))
	}

	h := &history{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	const clients, opsPerClient = 9, 250
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(ctx, t, h, id, eps[id%3], opsPerClient, seed)
		}()
	}
	phase := time.Now()
	progress := func(n int) {
		defer func() { t.Logf("%d operations after %v", n, time.Since(phase)); phase = time.Now() }()
		eventually(t, 60*time.Second, fmt.Sprintf("%d operations", n), func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return len(h.ops) >= n
		})
	}
	// Faults, one after another, each while clients work.
	progress(100)
	lead := c.waitLeader()
	c.faults.Isolate(c.member(lead).MemberID(), ids)
	var rest []int
	for i := range 3 {
		if i != lead {
			rest = append(rest, i)
		}
	}
	c.waitLeader(rest...)
	progress(400)
	c.faults.Heal()
	progress(700)
	f := (c.waitLeader() + 1) % 3
	c.stop(f)
	progress(1000)
	c.start(f)
	c.waitReady(f)
	progress(1300)
	c.faults.Cut(ids[0], ids[1])
	c.faults.Set(ids[2], ids[0], transport.Link{Delay: 20 * time.Millisecond, Reorder: true})
	progress(1700)
	c.faults.Heal()
	wg.Wait()

	checkHistory(t, h, seed)
	checkWatches(t, c.client(0), watches, wcancel)
}

// checkHistory fails t unless porcupine finds h linearizable.
func checkHistory(t *testing.T, h *history, seed uint64) {
	t.Helper()
	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, 60*time.Second)
	t.Logf("porcupine took %v", time.Since(checkStart))
	if res != porcupine.Ok {
		path := t.TempDir() + "/linearizability.html"
		if err := porcupine.VisualizePath(kvModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("history of %d operations is not linearizable (%v); seed %d", len(ops), res, seed)
	}
	t.Logf("%d operations linearizable", len(ops))
}

// checkWatches writes endKey through cli and then checks the members'
// watch streams: the same events in revision order, ending with that
// write, without gap or duplicate. wcancel stops a watcher that never sees
// the end.
func checkWatches(t *testing.T, cli *clientv3.Client, watches []<-chan []*clientv3.Event, wcancel context.CancelFunc) {
	t.Helper()
	end, err := cli.Put(context.Background(), endKey, "end")
	if err != nil {
		t.Fatal(err)
	}
	rev := end.Header.Revision
	time.AfterFunc(30*time.Second, wcancel) // a watcher that never sees the end fails below
	var streams [][]*clientv3.Event
	for _, w := range watches {
		streams = append(streams, <-w)
	}
	for i, evs := range streams {
		for j := 1; j < len(evs); j++ {
			if evs[j].Kv.ModRevision <= evs[j-1].Kv.ModRevision {
				t.Fatalf("watch %d: event %d at revision %d after %d (duplicate or out of order)", i+1, j, evs[j].Kv.ModRevision, evs[j-1].Kv.ModRevision)
			}
		}
		if n := len(evs); n == 0 || evs[n-1].Kv.ModRevision != rev {
			t.Fatalf("watch %d: ended before revision %d (%d events)", i+1, rev, n)
		}
		if err := sameEvents(streams[0], evs); err != nil {
			t.Fatalf("watch %d differs from watch 1: %v", i+1, err)
		}
	}
	// No gap: each revision after the first write is one event (every
	// write in these tests is under /lin/ and changes one key).
	evs := streams[0]
	for j := 1; j < len(evs); j++ {
		if evs[j].Kv.ModRevision != evs[j-1].Kv.ModRevision+1 {
			t.Fatalf("gap in watch stream: revision %d after %d", evs[j].Kv.ModRevision, evs[j-1].Kv.ModRevision)
		}
	}
}

func sameEvents(a, b []*clientv3.Event) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d events, want %d", len(b), len(a))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || string(x.Kv.Key) != string(y.Kv.Key) || string(x.Kv.Value) != string(y.Kv.Value) ||
			x.Kv.ModRevision != y.Kv.ModRevision || (x.Type == mvccpb.Event_PUT && x.Kv.Version != y.Kv.Version) {
			return fmt.Errorf("event %d: %v %s=%s@%d, want %v %s=%s@%d", i, y.Type, y.Kv.Key, y.Kv.Value, y.Kv.ModRevision, x.Type, x.Kv.Key, x.Kv.Value, x.Kv.ModRevision)
		}
	}
	return nil
}

// counts returns how many operations h holds, and how many of them are
// writes with an unknown outcome.
func (h *history) counts() (ops, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, op := range h.ops {
		if op.Output.(kvOutput).unknown {
			unknown++
		}
	}
	return len(h.ops), unknown
}

// TestLinearizableFlapQuorumLossMembership runs clients on every member
// through a rapidly flapping link from the leader to a follower, a
// partition that leaves no quorum anywhere (writes time out with unknown
// outcomes until it heals), a member added while clients work — clients
// then use it too — and an original member removed; porcupine checks the
// history, and the watch streams of the members there at the end (the new
// one watching from revision 1) must agree.
func TestLinearizableFlapQuorumLossMembership(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	c := newTestCluster(t, 3)
	c.waitLeader()
	ids := c.ids()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	watches := map[int]<-chan []*clientv3.Event{}
	for i := range 3 {
		watches[i] = watchAll(wctx, c.member(i).ClientURLs()[0])
	}

	h := &history{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Clients per member, so those of a member about to be removed can be
	// stopped first; each is bounded by its count and ctx.
	const perMember, maxOps = 3, 2000
	type clients struct {
		cancel context.CancelFunc
		wg     sync.WaitGroup
	}
	byMember := map[int]*clients{}
	startClients := func(i int) {
		mctx, mcancel := context.WithCancel(ctx)
		cs := &clients{cancel: mcancel}
		byMember[i] = cs
		for k := range perMember {
			id := i*perMember + k
			cs.wg.Add(1)
			go func() {
				defer cs.wg.Done()
				runClient(mctx, t, h, id, c.member(i).ClientURLs()[0], maxOps, seed)
			}()
		}
	}
	stopClients := func(i int) {
		byMember[i].cancel()
		byMember[i].wg.Wait()
	}
	for i := range 3 {
		startClients(i)
	}
	defer func() {
		for i := range byMember {
			stopClients(i)
		}
	}()
	phase := time.Now()
	progress := func(more int) {
		n, _ := h.counts()
		n += more
		defer func() { t.Logf("%d operations after %v", n, time.Since(phase)); phase = time.Now() }()
		eventually(t, 60*time.Second, fmt.Sprintf("%d operations", n), func() bool {
			got, _ := h.counts()
			return got >= n
		})
	}
	progress(100)

	// A link from the leader flaps faster than an election timeout.
	lead := c.waitLeader()
	c.faults.Flap(c.member(lead).MemberID(), c.member((lead+1)%3).MemberID(), multiElection/4)
	progress(400)
	c.faults.Heal()

	// No quorum anywhere: writes time out, their outcome unknown.
	_, unknown := h.counts()
	for _, id := range ids {
		c.faults.Isolate(id, ids)
	}
	eventually(t, 30*time.Second, "writes time out without a quorum", func() bool {
		_, u := h.counts()
		return u >= unknown+2*perMember
	})
	_, u := h.counts()
	t.Logf("no quorum: %d more writes with unknown outcome", u-unknown)
	c.faults.Heal()
	progress(300)

	// A fourth member joins while the clients work; clients use it too.
	peer := freeport.URL(t)
	var added *clientv3.MemberAddResponse
	eventually(t, 30*time.Second, "member add", func() bool {
		var err error
		added, err = c.client(c.waitLeader()).MemberAdd(ctx, []string{peer})
		return err == nil
	})
	c.cfgs = append(c.cfgs, c.joinConfig("m4", peer))
	c.mu.Lock()
	c.members = append(c.members, nil)
	c.mu.Unlock()
	c.start(3)
	c.waitReady(3)
	if c.member(3).MemberID() != added.Member.ID {
		t.Fatalf("joined as %x, added as %x", c.member(3).MemberID(), added.Member.ID)
	}
	watches[3] = watchAll(wctx, c.member(3).ClientURLs()[0])
	startClients(3)
	progress(300)

	// An original follower leaves; its clients stop first.
	gone := (c.waitLeader() + 1) % 3
	goneID := c.member(gone).MemberID()
	stopClients(gone)
	delete(byMember, gone)
	eventually(t, 30*time.Second, "member remove", func() bool {
		_, err := c.client(3).MemberRemove(ctx, goneID)
		return err == nil
	})
	select {
	case <-c.member(gone).Done():
	case <-time.After(20 * time.Second):
		t.Fatal("removed member still running after 20s")
	}
	if err := c.member(gone).Err(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed member stopped with %v, want %v", err, ErrRemoved)
	}
	c.mu.Lock()
	c.members[gone] = nil
	c.mu.Unlock()
	delete(watches, gone)
	progress(300)
	for i := range byMember {
		stopClients(i)
	}
	clear(byMember)

	checkHistory(t, h, seed)
	var ws []<-chan []*clientv3.Event
	for _, i := range c.running() {
		ws = append(ws, watches[i])
	}
	checkWatches(t, c.client(3), ws, wcancel)
}
