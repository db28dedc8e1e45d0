package compat

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// env is one backend as the steps see it: raw gRPC clients (so every request
// field can be set) and the IDs of the leases the server generated, in order.
type env struct {
	backend
	conn    grpc.ClientConnInterface
	kv      pb.KVClient
	lease   pb.LeaseClient
	maint   pb.MaintenanceClient
	leases  []int64
	lastRev int64
}

func newEnv(b backend) *env {
	conn := b.cli.ActiveConnection()
	return &env{backend: b, conn: conn, kv: pb.NewKVClient(conn), lease: pb.NewLeaseClient(conn), maint: pb.NewMaintenanceClient(conn)}
}

// leaseRef names a lease in a step: a positive value is that literal ID, a
// negative one -n is the n-th lease the server generated.
type leaseRef int64

func (e *env) resolve(r leaseRef) int64 {
	if r >= 0 {
		return int64(r)
	}
	n := int(-r) - 1
	if n >= len(e.leases) {
		return 0x7fff_0000 + int64(n) // never granted: unknown to both
	}
	return e.leases[n]
}

// normalize clears what legitimately differs between servers: the IDs in
// headers, the raft term, and generated lease IDs (replaced by -n).
func (e *env) normalize(m proto.Message) proto.Message {
	if m == nil {
		return nil
	}
	m = proto.Clone(m)
	e.walk(m.ProtoReflect())
	if tl, ok := m.(*pb.LeaseTimeToLiveResponse); ok {
		// etcd lists a lease's keys in map order.
		slices.SortFunc(tl.Keys, bytes.Compare)
	}
	if ll, ok := m.(*pb.LeaseLeasesResponse); ok {
		slices.SortFunc(ll.Leases, func(a, b *pb.LeaseStatus) int { return int(a.ID - b.ID) })
	}
	return m
}

func (e *env) walk(m protoreflect.Message) {
	if h, ok := m.Interface().(*pb.ResponseHeader); ok {
		h.ClusterId, h.MemberId, h.RaftTerm = 0, 0, 0
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				e.walk(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			e.walk(v.Message())
		case fd.Kind() == protoreflect.BytesKind && fd.Name() == "key":
			// Lock and election keys end in their lease's ID, in hex.
			if i := bytes.LastIndexByte(v.Bytes(), '/'); i >= 0 {
				if id, err := strconv.ParseInt(string(v.Bytes()[i+1:]), 16, 64); err == nil {
					if n := slices.Index(e.leases, id); n >= 0 {
						m.Set(fd, protoreflect.ValueOfBytes(fmt.Appendf(nil, "%s<lease %d>", v.Bytes()[:i+1], -n-1)))
					}
				}
			}
		case fd.Kind() == protoreflect.Int64Kind && (fd.Name() == "lease" || fd.Name() == "ID"):
			if i := slices.Index(e.leases, v.Int()); i >= 0 {
				m.Set(fd, protoreflect.ValueOfInt64(-int64(i)-1))
			}
		}
		return true
	})
}

// step is one operation, run the same way on each backend.
type step struct {
	desc string
	do   func(ctx context.Context, e *env) (proto.Message, error)
}

// outcome is a normalised response or error, ready to compare.
type outcome struct {
	resp proto.Message
	err  string
}

func (o outcome) String() string {
	if o.err != "" {
		return "error: " + o.err
	}
	if o.resp == nil {
		return "<nil>"
	}
	return prototext.MarshalOptions{Multiline: false}.Format(o.resp)
}

func (o outcome) equal(p outcome) bool {
	return o.err == p.err && proto.Equal(o.resp, p.resp)
}

func run(e *env, s step) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.do(ctx, e)
	if err != nil {
		st := status.Convert(err)
		return outcome{err: fmt.Sprintf("%s: %s", st.Code(), st.Message())}
	}
	if g, ok := resp.(*pb.LeaseGrantResponse); ok && g.Error == "" {
		if !slices.Contains(e.leases, g.ID) {
			e.leases = append(e.leases, g.ID)
		}
	}
	if h, ok := resp.(interface{ GetHeader() *pb.ResponseHeader }); ok && h.GetHeader() != nil {
		e.lastRev = max(e.lastRev, h.GetHeader().Revision)
	}
	return outcome{resp: e.normalize(resp)}
}

// compare runs steps on the oracle and on tend and returns a description of
// each step whose outcomes differ. It stops after maxDiffs differences, since
// later steps usually differ only because of an earlier one.
func compare(t *testing.T, oracle, tend *env, steps []step, maxDiffs int) []string {
	var diffs []string
	for i, s := range steps {
		start := time.Now()
		want := run(oracle, s)
		got := run(tend, s)
		if d := time.Since(start); d > time.Second {
			t.Logf("step %d took %v: %s", i, d, s.desc)
		}
		if !want.equal(got) {
			diffs = append(diffs, fmt.Sprintf("step %d: %s\n  etcd: %s\n  tend: %s", i, s.desc, want, got))
			if len(diffs) == maxDiffs {
				break
			}
		}
	}
	return diffs
}

// differ fails the test for each difference compare finds.
func differ(t *testing.T, oracle, tend *env, steps []step) {
	t.Helper()
	for _, d := range compare(t, oracle, tend, steps, 5) {
		t.Error(d)
	}
}

// Step constructors. Each description is a repro: the request as text.

func txt(m proto.Message) string { return prototext.MarshalOptions{}.Format(m) }

func put(k, v string) step { return putReq(&pb.PutRequest{Key: []byte(k), Value: []byte(v)}, 0) }

func putReq(r *pb.PutRequest, lease leaseRef) step {
	desc := "Put " + txt(r)
	if lease != 0 {
		desc += fmt.Sprintf(" with lease ref %d", lease)
	}
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		r := proto.Clone(r).(*pb.PutRequest)
		if lease != 0 {
			r.Lease = e.resolve(lease)
		}
		return e.kv.Put(ctx, r)
	}}
}

func get(r *pb.RangeRequest) step {
	return step{"Range " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.kv.Range(ctx, r) }}
}

func del(r *pb.DeleteRangeRequest) step {
	return step{"DeleteRange " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.kv.DeleteRange(ctx, r) }}
}

func txn(r *pb.TxnRequest) step {
	return step{"Txn " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.kv.Txn(ctx, r) }}
}

func compact(rev int64, physical bool) step {
	r := &pb.CompactionRequest{Revision: rev, Physical: physical}
	return step{"Compact " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.kv.Compact(ctx, r) }}
}

// compactLast compacts at the newest revision minus back.
func compactLast(back int64) step {
	return step{fmt.Sprintf("Compact revision: <newest - %d>", back), func(ctx context.Context, e *env) (proto.Message, error) {
		return e.kv.Compact(ctx, &pb.CompactionRequest{Revision: e.lastRev - back})
	}}
}

func grant(ttl, id int64) step {
	r := &pb.LeaseGrantRequest{TTL: ttl, ID: id}
	return step{"LeaseGrant " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.lease.LeaseGrant(ctx, r) }}
}

func revoke(l leaseRef) step {
	return step{fmt.Sprintf("LeaseRevoke lease ref %d", l), func(ctx context.Context, e *env) (proto.Message, error) {
		return e.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: e.resolve(l)})
	}}
}

func timeToLive(l leaseRef, keys bool) step {
	return step{fmt.Sprintf("LeaseTimeToLive lease ref %d keys=%v", l, keys), func(ctx context.Context, e *env) (proto.Message, error) {
		resp, err := e.lease.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: e.resolve(l), Keys: keys})
		if resp != nil && resp.TTL > 0 {
			resp.TTL = 1 // remaining time depends on when each server was asked
		}
		return resp, err
	}}
}

func leases() step {
	return step{"LeaseLeases", func(ctx context.Context, e *env) (proto.Message, error) {
		return e.lease.LeaseLeases(ctx, &pb.LeaseLeasesRequest{})
	}}
}

// watch opens a watch, collects events until it has n or 5s pass, and
// returns them (or the cancel reason) as a WatchResponse.
func watch(key, end string, startRev int64, prevKV bool, n int) step {
	desc := fmt.Sprintf("Watch key=%q range_end=%q start_revision=%d prev_kv=%v, expect %d events", key, end, startRev, prevKV, n)
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		opts := []clientv3.OpOption{clientv3.WithRev(startRev)}
		if end != "" {
			opts = append(opts, clientv3.WithRange(end))
		}
		if prevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		out := &pb.WatchResponse{}
		for resp := range e.cli.Watch(ctx, key, opts...) {
			if resp.Canceled || resp.CompactRevision != 0 {
				out.Canceled, out.CompactRevision, out.CancelReason = resp.Canceled, resp.CompactRevision, resp.Err().Error()
				return out, nil
			}
			for _, ev := range resp.Events {
				out.Events = append(out.Events, (*mvccpb.Event)(ev))
			}
			if len(out.Events) >= n {
				return out, nil
			}
		}
		if len(out.Events) < n {
			out.CancelReason = fmt.Sprintf("only %d events within 5s", len(out.Events))
		}
		return out, nil
	}}
}

// watchLive opens a watch from the next revision with opts, then runs writes
// and collects n events (5s at most): live delivery, filters, fragments.
func watchLive(desc, key string, n int, writes []step, opts ...clientv3.OpOption) step {
	return step{fmt.Sprintf("Watch live key=%q (%s), then %d writes, expect %d events", key, desc, len(writes), n), func(ctx context.Context, e *env) (proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		opts := append([]clientv3.OpOption{clientv3.WithRev(e.lastRev + 1)}, opts...)
		ch := e.cli.Watch(ctx, key, opts...)
		out := &pb.WatchResponse{}
		for _, w := range writes {
			if _, err := w.do(ctx, e); err != nil {
				return nil, fmt.Errorf("write %s: %w", w.desc, err)
			}
			e.lastRev++
		}
		for resp := range ch {
			if err := resp.Err(); err != nil {
				out.CancelReason = err.Error()
				return out, nil
			}
			for _, ev := range resp.Events {
				out.Events = append(out.Events, (*mvccpb.Event)(ev))
			}
			if len(out.Events) >= n {
				return out, nil
			}
		}
		out.CancelReason = fmt.Sprintf("only %d events within 5s", len(out.Events))
		return out, nil
	}}
}

// hashKV asks for the hash of the keyspace's stored history up to rev (0:
// the newest); equal hashes mean equal bytes in the key bucket.
func hashKV(rev int64) step {
	r := &pb.HashKVRequest{Revision: rev}
	return step{"HashKV " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.maint.HashKV(ctx, r) }}
}

func alarms() step {
	r := &pb.AlarmRequest{Action: pb.AlarmRequest_GET}
	return step{"Alarm " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) { return e.maint.Alarm(ctx, r) }}
}

// watchProgress opens a watch on key from now, asks for a
// progress notification and returns it.
func watchProgress(key string) step {
	return step{fmt.Sprintf("Watch key=%q from now, then RequestProgress", key), func(ctx context.Context, e *env) (proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cli := e.cli // no other watch is open between steps
		ch := cli.Watch(ctx, key, clientv3.WithCreatedNotify())
		if resp := <-ch; !resp.Created {
			return nil, fmt.Errorf("watch not created: %v", resp.Err())
		}
		if err := cli.RequestProgress(ctx); err != nil {
			return nil, err
		}
		resp, ok := <-ch
		if !ok {
			return nil, fmt.Errorf("watch closed: %v", ctx.Err())
		}
		out := &pb.WatchResponse{Header: resp.Header}
		if !resp.IsProgressNotify() {
			out.CancelReason = fmt.Sprintf("not a progress notification: %d events", len(resp.Events))
		}
		return out, nil
	}}
}

func kvs(pairs ...string) []step {
	var s []step
	for i := 0; i+1 < len(pairs); i += 2 {
		s = append(s, put(pairs[i], pairs[i+1]))
	}
	return s
}

func b(s string) []byte { return []byte(s) }

func reqPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: b(k), Value: b(v)}}}
}
func reqGet(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: b(k), RangeEnd: b(end)}}}
}
func reqDel(k, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: b(k), RangeEnd: b(end), PrevKv: true}}}
}
func reqTxn(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func cmpValue(k string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: b(k), Result: r, Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: b(v)}}
}
func cmpVersion(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Result: r, Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: v}}
}
func cmpCreate(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Result: r, Target: pb.Compare_CREATE, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: v}}
}
func cmpMod(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Result: r, Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: v}}
}

// scripted is a fixed tour of the KV, Lease and Watch APIs and their errors.
func scripted() []step {
	s := kvs("a", "1", "b", "2", "c", "3", "/p/x", "10", "/p/y", "20", "/p/z", "30", "/q", "q")
	s = append(s,
		putReq(&pb.PutRequest{Key: b("a"), Value: b("1b"), PrevKv: true}, 0),
		put("a", "1c"),
		hashKV(0),
		hashKV(5),
		alarms(),
		// Ranges of every kind.
		get(&pb.RangeRequest{Key: b("a")}),
		get(&pb.RangeRequest{Key: b("nope")}),
		get(&pb.RangeRequest{Key: b("a"), RangeEnd: b("c")}),
		get(&pb.RangeRequest{Key: b("/p/"), RangeEnd: b("/p0")}),
		get(&pb.RangeRequest{Key: b("b"), RangeEnd: []byte{0}}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Limit: 2}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true}),
		get(&pb.RangeRequest{Key: b("a"), Revision: 1}),
		get(&pb.RangeRequest{Key: b("a"), Revision: 8}),
		get(&pb.RangeRequest{Key: b("a"), Serializable: true}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MinModRevision: 3, MaxModRevision: 6}),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, MinCreateRevision: 2, MaxCreateRevision: 5}),
	)
	for _, target := range []pb.RangeRequest_SortTarget{pb.RangeRequest_KEY, pb.RangeRequest_VERSION, pb.RangeRequest_CREATE, pb.RangeRequest_MOD, pb.RangeRequest_VALUE} {
		for _, order := range []pb.RangeRequest_SortOrder{pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND} {
			s = append(s, get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, SortTarget: target, SortOrder: order, Limit: 4}))
		}
	}
	// Transactions.
	s = append(s,
		txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpValue("a", pb.Compare_EQUAL, "1c"), cmpVersion("a", pb.Compare_GREATER, 1), cmpCreate("b", pb.Compare_EQUAL, 3), cmpMod("c", pb.Compare_LESS, 100)},
			Success: []*pb.RequestOp{reqPut("t1", "yes"), reqGet("a", "c"), reqDel("/p/x", "")},
			Failure: []*pb.RequestOp{reqPut("t1", "no")},
		}),
		txn(&pb.TxnRequest{
			Compare: []*pb.Compare{cmpValue("a", pb.Compare_NOT_EQUAL, "1c")},
			Success: []*pb.RequestOp{reqPut("t2", "yes")},
			Failure: []*pb.RequestOp{reqPut("t2", "no"), reqGet("t2", "")},
		}),
		txn(&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: b("/p/"), RangeEnd: b("/p0"), Result: pb.Compare_GREATER, Target: pb.Compare_VERSION, TargetUnion: &pb.Compare_Version{Version: 0}}},
			Success: []*pb.RequestOp{reqTxn(&pb.TxnRequest{Success: []*pb.RequestOp{reqPut("nested", "1"), reqGet("nested", "")}})},
		}),
		txn(&pb.TxnRequest{Compare: []*pb.Compare{cmpVersion("never", pb.Compare_EQUAL, 0)}}),
		txn(&pb.TxnRequest{Success: []*pb.RequestOp{reqPut("dup", "1"), reqPut("dup", "2")}}),
		txn(&pb.TxnRequest{Success: []*pb.RequestOp{reqPut("dup", "1"), reqDel("dup", "")}}),
		txn(&pb.TxnRequest{Success: manyPuts(129)}),
		txn(&pb.TxnRequest{Success: manyPuts(128)}),
		// Deletes.
		del(&pb.DeleteRangeRequest{Key: b("c")}),
		del(&pb.DeleteRangeRequest{Key: b("c")}),
		del(&pb.DeleteRangeRequest{Key: b("/p/"), RangeEnd: b("/p0"), PrevKv: true}),
		del(&pb.DeleteRangeRequest{Key: b("many/"), RangeEnd: b("many0")}),
		// Errors.
		put("", "empty key"),
		get(&pb.RangeRequest{}),
		del(&pb.DeleteRangeRequest{}),
		put("big", strings.Repeat("x", 1600*1024)),
		get(&pb.RangeRequest{Key: b("a"), Revision: 1_000_000}),
		putReq(&pb.PutRequest{Key: b("absent"), IgnoreValue: true}, 0),
		putReq(&pb.PutRequest{Key: b("a"), Value: b("v"), IgnoreLease: true}, 99),
		putReq(&pb.PutRequest{Key: b("a"), Value: b("v")}, 12345),
	)
	// Leases.
	s = append(s,
		grant(100, 0),
		grant(200, 0x1234),
		grant(300, 0x1234),
		putReq(&pb.PutRequest{Key: b("leased1"), Value: b("v")}, -1),
		putReq(&pb.PutRequest{Key: b("leased2"), Value: b("v")}, 0x1234),
		putReq(&pb.PutRequest{Key: b("leased1"), Value: b("w"), IgnoreLease: true}, 0),
		putReq(&pb.PutRequest{Key: b("leased2"), IgnoreValue: true}, -1),
		get(&pb.RangeRequest{Key: b("leased"), RangeEnd: b("leasee")}),
		timeToLive(-1, true),
		timeToLive(0x1234, false),
		timeToLive(0x999, true),
		leases(),
		revoke(-1),
		revoke(-1),
		revoke(0x999),
		get(&pb.RangeRequest{Key: b("leased"), RangeEnd: b("leasee")}),
		leases(),
		grant(-5, 0),
		grant(1, 0), // below the minimum TTL, raised to it
	)
	// Watches from past revisions, then compaction.
	s = append(s,
		watch("a", "", 1, false, 3),
		watch("", "\x00", 2, true, 12),
		watch("/p/", "/p0", 1, true, 6),
		watchProgress("/quiet"),
		watchLive("prefix, no filter", "/live/", 4,
			[]step{put("/live/a", "1"), put("/live/b", "2"), del(&pb.DeleteRangeRequest{Key: b("/live/a")}), put("/live/a", "3")},
			clientv3.WithPrefix(), clientv3.WithPrevKV()),
		watchLive("prefix, no puts", "/live/", 1,
			[]step{put("/live/c", "1"), del(&pb.DeleteRangeRequest{Key: b("/live/"), RangeEnd: b("/live0")})},
			clientv3.WithPrefix(), clientv3.WithFilterPut()),
		watchLive("one key, no deletes", "/live/x", 2,
			[]step{put("/live/x", "1"), del(&pb.DeleteRangeRequest{Key: b("/live/x")}), put("/live/x", "2")},
			clientv3.WithFilterDelete()),
		watchLive("all keys, one txn of many", "\x00", 40,
			[]step{txn(&pb.TxnRequest{Success: manyPuts(40)})},
			clientv3.WithFromKey()),
		compact(10, true),
		compact(10, false),
		compact(1_000_000, false),
		get(&pb.RangeRequest{Key: b("a"), Revision: 9}),
		get(&pb.RangeRequest{Key: b("a"), Revision: 10}),
		watch("a", "", 5, false, 1),
		watch("", "\x00", 10, false, 3),
		put("after", "compaction"),
		compactLast(0),
		get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}),
		hashKV(0),
		hashKV(5),
	)
	return s
}

func manyPuts(n int) []*pb.RequestOp {
	ops := make([]*pb.RequestOp, n)
	for i := range ops {
		ops[i] = reqPut(fmt.Sprintf("many/%03d", i), "v")
	}
	return ops
}

func TestScriptedMatchesEtcd(t *testing.T) {
	t.Parallel()
	oracle := newEnv(startEtcd(t))
	tend := newEnv(startTend(t))
	differ(t, oracle, tend, scripted())
}

// TestScriptedMatchesEtcdOnThreeMembers runs the same script through a
// follower of a three-member tend cluster.
func TestScriptedMatchesEtcdOnThreeMembers(t *testing.T) {
	t.Parallel()
	oracle := newEnv(startEtcd(t))
	tend := newEnv(startTendCluster(t, 3))
	differ(t, oracle, tend, scripted())
}

// The comparison itself must see a difference when there is one: two real
// etcds, one holding an extra key.
func TestCompareDetectsDifferences(t *testing.T) {
	t.Parallel()
	a := newEnv(startEtcd(t))
	b := newEnv(startEtcd(t))
	steps := []step{put("k", "1"), get(&pb.RangeRequest{Key: []byte("k")})}
	if d := compare(t, a, b, steps, 5); len(d) != 0 {
		t.Fatalf("identical servers differ: %v", d)
	}
	run(b, put("extra", "x"))
	steps = []step{get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}), put("", "")}
	d := compare(t, a, b, steps, 5)
	if len(d) != 1 || !strings.Contains(d[0], "step 0") || !strings.Contains(d[0], "extra") {
		t.Fatalf("differences = %q, want step 0 naming the extra key", d)
	}
}

// TestFromKeyDeleteThenPutSurvivesCompaction: a txn that deletes from a key
// onwards and then puts that key, followed by a compaction at its revision.
// etcd v3.7.3 answers the txn (compared here) but exits on the next range
// after the compaction ("range failed to find revision pair"), so the rest
// is checked on tend alone against what etcd's semantics say.
func TestFromKeyDeleteThenPutSurvivesCompaction(t *testing.T) {
	t.Parallel()
	oracle := newEnv(startEtcd(t))
	tend := newEnv(startTend(t))
	differ(t, oracle, tend, []step{
		put("a", "1"),
		put("b", "2"),
		txn(&pb.TxnRequest{Success: []*pb.RequestOp{reqDel("a", "\x00"), reqPut("a", "again")}}),
	})
	for _, s := range []step{compactLast(0)} {
		if o := run(tend, s); o.err != "" {
			t.Fatalf("%s: %s", s.desc, o.err)
		}
	}
	o := run(tend, get(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}))
	want := &pb.RangeResponse{
		Header: &pb.ResponseHeader{Revision: 4},
		Kvs:    []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("again"), CreateRevision: 4, ModRevision: 4, Version: 1}},
		Count:  1,
	}
	if o.err != "" || !proto.Equal(o.resp, want) {
		t.Errorf("range after compaction = %s, want %s", o, outcome{resp: want})
	}
}
