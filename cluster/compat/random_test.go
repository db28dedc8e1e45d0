package compat

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

var (
	seedFlag = flag.Uint64("seed", 1, "seed of the randomized sequence (0: pick one and log it)")
	opsFlag  = flag.Int("ops", 300, "length of the randomized sequence")
)

// gen draws operations over a small key space, so they collide often.
type gen struct {
	r      *rand.Rand
	nLease int64 // explicit lease IDs granted so far are 1..nLease
}

var genKeys = []string{"a", "b", "c", "d", "/p/a", "/p/b", "/p/c", "/q/a", "/q/b", "z"}

func (g *gen) key() string { return genKeys[g.r.IntN(len(genKeys))] }

func (g *gen) val() string { return fmt.Sprintf("v%d", g.r.IntN(1000)) }

// span returns a key and range end of a random kind: one key, a range, a
// prefix, from a key, or everything.
func (g *gen) span() (key, end []byte) {
	k := g.key()
	switch g.r.IntN(5) {
	case 0:
		return []byte(k), nil
	case 1:
		e := g.key()
		return []byte(k), []byte(e)
	case 2:
		p := []byte(k[:1+g.r.IntN(len(k))])
		end := append([]byte(nil), p...)
		end[len(end)-1]++
		return p, end
	case 3:
		return []byte(k), []byte{0}
	default:
		return []byte{0}, []byte{0}
	}
}

// lease returns an explicit lease ID: usually one granted, sometimes not.
func (g *gen) lease() leaseRef {
	if g.nLease == 0 || g.r.IntN(5) == 0 {
		return leaseRef(1000 + g.r.Int64N(10))
	}
	return leaseRef(1 + g.r.Int64N(g.nLease))
}

func (g *gen) rangeReq() *pb.RangeRequest {
	k, e := g.span()
	r := &pb.RangeRequest{Key: k, RangeEnd: e}
	if g.r.IntN(3) == 0 {
		r.Limit = g.r.Int64N(4)
	}
	if g.r.IntN(3) == 0 {
		r.SortTarget = pb.RangeRequest_SortTarget(g.r.IntN(5))
		r.SortOrder = pb.RangeRequest_SortOrder(g.r.IntN(3))
	}
	switch g.r.IntN(8) {
	case 0:
		r.KeysOnly = true
	case 1:
		r.CountOnly = true
	case 2:
		r.Revision = g.r.Int64N(40)
	case 3:
		r.MinModRevision, r.MaxModRevision = g.r.Int64N(20), g.r.Int64N(40)
	case 4:
		r.MinCreateRevision, r.MaxCreateRevision = g.r.Int64N(20), g.r.Int64N(40)
	}
	return r
}

func (g *gen) requestOp(depth int) *pb.RequestOp {
	switch n := g.r.IntN(10); {
	case n < 5:
		return reqPut(g.key(), g.val())
	case n < 8:
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: g.rangeReq()}}
	case n < 9 || depth > 0:
		k, e := g.span()
		return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: k, RangeEnd: e, PrevKv: g.r.IntN(2) == 0}}}
	default:
		return reqTxn(g.txnReq(depth + 1))
	}
}

func (g *gen) compareOp() *pb.Compare {
	k := g.key()
	res := pb.Compare_CompareResult(g.r.IntN(4))
	switch g.r.IntN(4) {
	case 0:
		return cmpValue(k, res, g.val())
	case 1:
		return cmpVersion(k, res, g.r.Int64N(4))
	case 2:
		return cmpCreate(k, res, g.r.Int64N(30))
	default:
		return cmpMod(k, res, g.r.Int64N(30))
	}
}

func (g *gen) txnReq(depth int) *pb.TxnRequest {
	t := &pb.TxnRequest{}
	for range g.r.IntN(3) {
		t.Compare = append(t.Compare, g.compareOp())
	}
	for range g.r.IntN(4) {
		t.Success = append(t.Success, g.requestOp(depth))
	}
	for range g.r.IntN(3) {
		t.Failure = append(t.Failure, g.requestOp(depth))
	}
	avoidEtcdFromKeyBug(t.Success)
	avoidEtcdFromKeyBug(t.Failure)
	return t
}

// avoidEtcdFromKeyBug narrows from-key deletes to one key in a branch that
// also puts. etcd v3.7.3's duplicate-key check misses a put after a from-key
// delete (range_end "\x00") in one txn, and a later compaction at that
// revision makes the oracle exit with "range failed to find revision pair"
// (see TestFromKeyDeleteThenPutSurvivesCompaction; tend gets this right).
func avoidEtcdFromKeyBug(ops []*pb.RequestOp) {
	puts := false
	for _, op := range ops {
		puts = puts || op.GetRequestPut() != nil || op.GetRequestTxn() != nil
	}
	if !puts {
		return
	}
	for _, op := range ops {
		if d := op.GetRequestDeleteRange(); d != nil && string(d.RangeEnd) == "\x00" {
			d.RangeEnd = nil
		}
	}
}

func (g *gen) next() step {
	switch n := g.r.IntN(100); {
	case n < 30:
		r := &pb.PutRequest{Key: []byte(g.key()), Value: []byte(g.val()), PrevKv: g.r.IntN(3) == 0}
		if g.r.IntN(4) == 0 {
			return putReq(r, g.lease())
		}
		return putReq(r, 0)
	case n < 50:
		return get(g.rangeReq())
	case n < 60:
		k, e := g.span()
		return del(&pb.DeleteRangeRequest{Key: k, RangeEnd: e, PrevKv: g.r.IntN(2) == 0})
	case n < 80:
		return txn(g.txnReq(0))
	case n < 86:
		g.nLease++
		return grant(60+g.r.Int64N(100), g.nLease)
	case n < 90:
		return revoke(g.lease())
	case n < 93:
		return timeToLive(g.lease(), true)
	case n < 95:
		return leases()
	case n < 97:
		return compactLast(g.r.Int64N(5))
	default:
		return step{"Range (all keys, serializable)", func(ctx context.Context, e *env) (proto.Message, error) {
			return e.kv.Range(ctx, &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Serializable: true})
		}}
	}
}

// TestRandomMatchesEtcd runs a random sequence (fixed seed by default; pass
// -seed=0 for a fresh one) on both servers, then replays the whole history
// through a watch and compares the final keyspace.
func TestRandomMatchesEtcd(t *testing.T) {
	t.Parallel()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d ops (repro: go test ./cluster/compat -run Random -seed=%d -ops=%d)", seed, *opsFlag, seed, *opsFlag)
	g := &gen{r: rand.New(rand.NewPCG(seed, 0))}
	steps := make([]step, 0, *opsFlag+2)
	for range *opsFlag {
		steps = append(steps, g.next())
	}
	steps = append(steps,
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}),
		hashKV(0),
		step{"Watch everything from the oldest revision kept", func(ctx context.Context, e *env) (proto.Message, error) {
			return watchAll(ctx, e)
		}},
	)
	oracle := newEnv(startEtcd(t))
	tend := newEnv(startTend(t))
	differ(t, oracle, tend, steps)
	// The same history through a follower of a three-member cluster.
	oracle3 := newEnv(startEtcd(t))
	tend3 := newEnv(startTendCluster(t, 3))
	differ(t, oracle3, tend3, steps)
}

// watchAll replays the history still kept (after the last compaction) up to
// the newest revision and returns it as one WatchResponse.
func watchAll(ctx context.Context, e *env) (proto.Message, error) {
	start := int64(1)
	if _, err := e.kv.Range(ctx, &pb.RangeRequest{Key: []byte("a"), Revision: 1}); err != nil {
		// Compacted: find the oldest revision kept by probing upward.
		for start = 2; start <= e.lastRev; start++ {
			if _, err := e.kv.Range(ctx, &pb.RangeRequest{Key: []byte("a"), Revision: start}); err == nil {
				break
			}
		}
	}
	head, err := e.kv.Range(ctx, &pb.RangeRequest{Key: []byte("a")})
	if err != nil {
		return nil, err
	}
	want := head.Header.Revision
	out := &pb.WatchResponse{}
	if start > want {
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for resp := range e.cli.Watch(wctx, "\x00", withFromKeyRev(start)...) {
		if err := resp.Err(); err != nil {
			out.CancelReason = err.Error()
			return out, nil
		}
		for _, ev := range resp.Events {
			out.Events = append(out.Events, (*mvccEvent)(ev))
			if ev.Kv.ModRevision >= want {
				return out, nil
			}
		}
	}
	out.CancelReason = fmt.Sprintf("history ended early: %d events", len(out.Events))
	return out, nil
}

type mvccEvent = mvccpb.Event

func withFromKeyRev(rev int64) []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithRev(rev), clientv3.WithPrevKV()}
}
