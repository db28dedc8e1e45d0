package store

import (
	"bytes"
	"fmt"
	"math"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// rangeEnd turns a request's range_end into the index's form: nil for a
// single key, empty for "to the end" ("\x00"), else the exclusive end.
func rangeEnd(end []byte) []byte {
	if len(end) == 1 && end[0] == 0 {
		return []byte{}
	}
	if len(end) == 0 {
		return nil
	}
	return end
}

// visitAt calls fn with each key in the range that exists at rev.
func (s *Store) visitAt(key, end []byte, rev int64, fn func(ki *keyIndex, mod, created revision, ver int64) bool) {
	if end == nil {
		if ki := s.idx.get(key); ki != nil {
			if mod, created, ver, ok := ki.get(rev); ok {
				fn(ki, mod, created, ver)
			}
		}
		return
	}
	if len(end) > 0 && bytes.Compare(key, end) >= 0 {
		return
	}
	s.idx.visit(key, end, func(ki *keyIndex) bool {
		mod, created, ver, ok := ki.get(rev)
		if !ok {
			return true
		}
		return fn(ki, mod, created, ver)
	})
}

type rangeOpts struct {
	limit        int64
	rev          int64
	countOnly    bool
	fastKeysOnly bool
}

// rangeKeys reads the range at ro.rev (0: curRev), as etcd's rangeKeys: count
// is the number of keys in range, not capped by the limit.
func (s *Store) rangeKeys(key, end []byte, curRev int64, ro rangeOpts, rd kvReader) (kvs []*mvccpb.KeyValue, count int64, err error) {
	rev := ro.rev
	if rev > curRev {
		return nil, -1, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < s.compactRev {
		return nil, -1, ErrCompacted
	}
	var revs []revision
	s.visitAt(key, end, rev, func(ki *keyIndex, mod, created revision, ver int64) bool {
		count++
		if ro.countOnly || (ro.limit > 0 && int64(len(kvs)) >= ro.limit) {
			return true
		}
		if ro.fastKeysOnly {
			kvs = append(kvs, &mvccpb.KeyValue{Key: bytes.Clone(ki.key), ModRevision: mod.main, CreateRevision: created.main, Version: ver})
		} else {
			revs = append(revs, mod)
			kvs = append(kvs, nil)
		}
		return true
	})
	if ro.fastKeysOnly || ro.countOnly {
		return kvs, count, nil
	}
	for i, r := range revs {
		if kvs[i], err = rd.get(r); err != nil {
			return nil, 0, err
		}
	}
	return kvs, count, nil
}

func isDefaultOrdering(t pb.RangeRequest_SortTarget, o pb.RangeRequest_SortOrder) bool {
	return o == pb.RangeRequest_NONE || (t == pb.RangeRequest_KEY && o == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// executeRange answers a RangeRequest at curRev the way etcd's executeRange
// does: filters and sorting read the whole range, then the limit cuts.
func (s *Store) executeRange(r *pb.RangeRequest, curRev int64, rd kvReader) (*pb.RangeResponse, error) {
	s.counts.ranges.Add(1)
	if r == nil {
		r = &pb.RangeRequest{}
	}
	limit := r.Limit
	if !isDefaultOrdering(r.SortTarget, r.SortOrder) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++
	}
	ro := rangeOpts{
		limit:        limit,
		rev:          r.Revision,
		countOnly:    r.CountOnly,
		fastKeysOnly: r.KeysOnly && r.SortTarget != pb.RangeRequest_VALUE,
	}
	kvs, count, err := s.rangeKeys(r.Key, rangeEnd(r.RangeEnd), curRev, ro, rd)
	if err != nil {
		return nil, err
	}
	kvs = filterKVs(kvs, r)
	sortKVs(kvs, r)
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: curRev}, Count: count}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		resp.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	resp.Kvs = kvs
	return resp, nil
}

func filterKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) []*mvccpb.KeyValue {
	if !hasRevisionFilters(r) {
		return kvs
	}
	out := kvs[:0]
	for _, kv := range kvs {
		switch {
		case r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision:
		case r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision:
		case r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision:
		case r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision:
		default:
			out = append(out, kv)
		}
	}
	return out
}

func sortKVs(kvs []*mvccpb.KeyValue, r *pb.RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND
	}
	if isDefaultOrdering(r.SortTarget, order) {
		return
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch r.SortTarget {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	default:
		return
	}
	// etcd sorts with sort.Sort (not stable); a stable sort gives the same
	// order for distinct sort values and key order for ties.
	switch order {
	case pb.RangeRequest_ASCEND:
		sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
	case pb.RangeRequest_DESCEND:
		sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[j], kvs[i]) })
	}
}

// writeTxn is one write transaction inside Apply: all its writes share the
// revision beginRev+1, which exists only if the txn changed something.
type writeTxn struct {
	s        *Store
	beginRev int64
	changes  []change
	err      error // first backend error; Apply turns it fatal
}

type change struct {
	kv   *mvccpb.KeyValue
	tomb bool
}

func (s *Store) beginWrite() *writeTxn { return &writeTxn{s: s, beginRev: s.rev} }

// rev is the revision reads inside the txn see.
func (t *writeTxn) rev() int64 {
	if len(t.changes) > 0 {
		return t.beginRev + 1
	}
	return t.beginRev
}

func (t *writeTxn) put(key, value []byte, lease int64) {
	s := t.s
	s.counts.puts.Add(1)
	s.counts.putBytes.Add(uint64(len(key) + len(value)))
	rev := t.beginRev + 1
	created, ver := rev, int64(0)
	var oldLease int64
	ki := s.idx.getOrCreate(key)
	if _, c, v, ok := ki.get(rev); ok {
		created, ver = c.main, v
		oldLease = s.keyLease[string(key)]
	}
	r := revision{main: rev, sub: int64(len(t.changes))}
	kv := &mvccpb.KeyValue{
		Key:            ki.key,
		Value:          bytes.Clone(value),
		CreateRevision: created,
		ModRevision:    rev,
		Version:        ver + 1,
		Lease:          lease,
	}
	t.store(r, false, kv)
	if !ki.live() {
		s.idx.live++
	}
	ki.put(r)
	t.changes = append(t.changes, change{kv: kv})
	if oldLease == lease {
		return
	}
	if oldLease != 0 {
		s.detach(oldLease, ki.key)
	}
	if lease != 0 {
		s.attach(lease, ki.key)
	}
}

// deleteRange tombstones every key live in the range; it returns how many.
func (t *writeTxn) deleteRange(key, end []byte) int64 {
	var kis []*keyIndex
	t.s.visitAt(key, end, t.rev(), func(ki *keyIndex, _, _ revision, _ int64) bool {
		kis = append(kis, ki)
		return true
	})
	for _, ki := range kis {
		t.delete(ki)
	}
	return int64(len(kis))
}

func (t *writeTxn) delete(ki *keyIndex) {
	s := t.s
	r := revision{main: t.beginRev + 1, sub: int64(len(t.changes))}
	kv := &mvccpb.KeyValue{Key: ki.key}
	t.store(r, true, kv)
	if ki.live() {
		s.idx.live--
	}
	ki.tombstone(r)
	t.changes = append(t.changes, change{kv: kv, tomb: true})
	if id, ok := s.keyLease[string(ki.key)]; ok {
		s.detach(id, ki.key)
	}
}

func (t *writeTxn) store(r revision, tomb bool, kv *mvccpb.KeyValue) {
	if t.err != nil {
		return
	}
	val, err := proto.Marshal(kv)
	if err != nil {
		t.err = fmt.Errorf("encode key-value %q: %w", kv.Key, err)
		return
	}
	t.err = t.s.be.putKV(r, tomb, val)
}

// end publishes the txn: the revision advances if anything changed and the
// watchers hear of it.
func (t *writeTxn) end() error {
	if t.err != nil {
		return t.err
	}
	if len(t.changes) == 0 {
		return nil
	}
	rev := t.beginRev + 1
	t.s.setRev(rev)
	evs := make([]*mvccpb.Event, len(t.changes))
	for i, c := range t.changes {
		if c.tomb {
			c.kv.ModRevision = rev
			evs[i] = &mvccpb.Event{Type: mvccpb.DELETE, Kv: c.kv}
		} else {
			evs[i] = &mvccpb.Event{Type: mvccpb.PUT, Kv: c.kv}
		}
	}
	t.s.hub.notify(t.s, rev, evs)
	return nil
}

// put applies a PutRequest whose lease and ignore_* checks have passed.
func (t *writeTxn) applyPut(p *pb.PutRequest) (*pb.PutResponse, error) {
	if p == nil {
		p = &pb.PutRequest{}
	}
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	val, lease := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease || p.PrevKv {
		prev, _, err := t.s.rangeKeys(p.Key, nil, t.rev(), rangeOpts{}, txReader{t.s.be})
		if err != nil {
			return nil, err
		}
		if len(prev) == 1 {
			if p.IgnoreValue {
				val = prev[0].Value
			}
			if p.IgnoreLease {
				lease = prev[0].Lease
			}
			if p.PrevKv {
				resp.PrevKv = prev[0]
			}
		}
	}
	t.put(p.Key, val, lease)
	resp.Header.Revision = t.beginRev + 1
	return resp, nil
}

func (t *writeTxn) applyDeleteRange(dr *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	t.s.counts.deletes.Add(1)
	if dr == nil {
		dr = &pb.DeleteRangeRequest{}
	}
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	end := rangeEnd(dr.RangeEnd)
	if dr.PrevKv {
		kvs, _, err := t.s.rangeKeys(dr.Key, end, t.rev(), rangeOpts{}, txReader{t.s.be})
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = kvs
	}
	resp.Deleted = t.deleteRange(dr.Key, end)
	resp.Header.Revision = t.rev()
	return resp, nil
}

// checkPut validates a put against the state before the txn, as etcd does.
func (s *Store) checkPut(p *pb.PutRequest) error {
	if p == nil {
		return nil
	}
	if p.Lease != 0 {
		if _, ok := s.leases[p.Lease]; !ok {
			return ErrLeaseNotFound
		}
	}
	if p.IgnoreValue || p.IgnoreLease {
		ki := s.idx.get(p.Key)
		if ki == nil {
			return ErrKeyNotFound
		}
		if _, _, _, ok := ki.get(s.rev); !ok {
			return ErrKeyNotFound
		}
	}
	return nil
}

func compareBytes(a, b []byte) int { return bytes.Compare(a, b) }
