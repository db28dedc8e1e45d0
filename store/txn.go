package store

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// applyTxn runs a Txn as etcd does: compares (nested ones too) decide the
// path against the state before the txn, the chosen requests are checked
// against that state, then executed in order as one revision.
func (s *Store) applyTxn(rt *pb.TxnRequest) (*pb.TxnResponse, error) {
	rd := txReader{s.be}
	path := s.comparePath(rt, rd)
	if _, err := s.checkTxn(rt, path); err != nil {
		return nil, err
	}
	s.counts.txns.Add(1)
	t := s.beginWrite()
	resp, _ := newTxnResp(rt, path)
	if _, err := t.executeTxn(rt, path, resp); err != nil {
		// A request that passed checkTxn cannot fail but for the backend.
		if t.err == nil {
			t.err = err
		}
	}
	resp.Header.Revision = t.rev()
	return resp, t.end()
}

func (s *Store) comparePath(rt *pb.TxnRequest, rd kvReader) []bool {
	ok := s.applyCompares(rt.GetCompare(), rd)
	path := []bool{ok}
	for _, op := range chosen(rt, ok) {
		// A nil nested txn counts as an empty one that succeeds.
		if tv, isTxn := op.GetRequest().(*pb.RequestOp_RequestTxn); isTxn {
			path = append(path, s.comparePath(tv.RequestTxn, rd)...)
		}
	}
	return path
}

func (s *Store) applyCompares(cmps []*pb.Compare, rd kvReader) bool {
	for _, c := range cmps {
		if !s.applyCompare(c, rd) {
			return false
		}
	}
	return true
}

// applyCompare follows etcd: on an empty range a value compare fails and the
// others compare against zero; on a range every key must satisfy it.
func (s *Store) applyCompare(c *pb.Compare, rd kvReader) bool {
	kvs, _, err := s.rangeKeys(c.Key, rangeEnd(c.RangeEnd), s.rev, rangeOpts{}, rd)
	if err != nil {
		return false
	}
	if len(kvs) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareKV(c, &mvccpb.KeyValue{})
	}
	for _, kv := range kvs {
		if !compareKV(c, kv) {
			return false
		}
	}
	return true
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = compareInt(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = compareInt(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = compareInt(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = compareInt(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

func chosen(rt *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return rt.GetSuccess()
	}
	return rt.GetFailure()
}

// checkTxn validates the chosen requests (recursively) before any write; it
// returns how many nested txns it walked.
func (s *Store) checkTxn(rt *pb.TxnRequest, path []bool) (int, error) {
	n := 0
	for _, op := range chosen(rt, path[0]) {
		var err error
		switch tv := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			err = s.checkRange(tv.RequestRange)
		case *pb.RequestOp_RequestPut:
			err = s.checkPut(tv.RequestPut)
		case *pb.RequestOp_RequestTxn:
			var sub int
			sub, err = s.checkTxn(tv.RequestTxn, path[1:])
			n += sub + 1
			path = path[sub+1:]
		}
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (s *Store) checkRange(r *pb.RangeRequest) error {
	if r == nil {
		return nil
	}
	switch {
	case r.Revision == 0:
		return nil
	case r.Revision > s.rev:
		return ErrFutureRev
	case r.Revision < s.compactRev:
		return ErrCompacted
	}
	return nil
}

func newTxnResp(rt *pb.TxnRequest, path []bool) (*pb.TxnResponse, int) {
	reqs := chosen(rt, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Header: &pb.ResponseHeader{}, Responses: make([]*pb.ResponseOp, len(reqs))}
	n := 0
	for i, req := range reqs {
		switch tv := req.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{}}
		case *pb.RequestOp_RequestPut:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{}}
		case *pb.RequestOp_RequestDeleteRange:
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{}}
		case *pb.RequestOp_RequestTxn:
			sub, subn := newTxnResp(tv.RequestTxn, path[1:])
			resp.Responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: sub}}
			path = path[1+subn:]
			n += subn + 1
		default:
			resp.Responses[i] = &pb.ResponseOp{}
		}
	}
	return resp, n
}

func (t *writeTxn) executeTxn(rt *pb.TxnRequest, path []bool, tresp *pb.TxnResponse) (int, error) {
	n := 0
	for i, req := range chosen(rt, path[0]) {
		switch tv := req.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			resp, err := t.s.executeRange(tv.RequestRange, t.rev(), txReader{t.s.be})
			if err != nil {
				return 0, err
			}
			tresp.Responses[i].Response.(*pb.ResponseOp_ResponseRange).ResponseRange = resp
		case *pb.RequestOp_RequestPut:
			resp, err := t.applyPut(tv.RequestPut)
			if err != nil {
				return 0, err
			}
			tresp.Responses[i].Response.(*pb.ResponseOp_ResponsePut).ResponsePut = resp
		case *pb.RequestOp_RequestDeleteRange:
			resp, err := t.applyDeleteRange(tv.RequestDeleteRange)
			if err != nil {
				return 0, err
			}
			tresp.Responses[i].Response.(*pb.ResponseOp_ResponseDeleteRange).ResponseDeleteRange = resp
		case *pb.RequestOp_RequestTxn:
			sub := tresp.Responses[i].Response.(*pb.ResponseOp_ResponseTxn).ResponseTxn
			subn, err := t.executeTxn(tv.RequestTxn, path[1:], sub)
			if err != nil {
				return 0, err
			}
			n += subn + 1
			path = path[subn+1:]
		}
	}
	return n, nil
}
