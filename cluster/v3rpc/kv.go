package v3rpc

import (
	"bytes"
	"context"
	"fmt"
	"math"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type kvServer struct {
	pb.UnimplementedKVServer
	b    Backend
	hdr  header
	opts Options
	auth *authn
}

// authorizeRead checks a read served from this member's store (not through
// Raft) as etcd's doSerialize does; the caller calls checkStale after
// reading.
func (s *kvServer) authorizeRead(ctx context.Context, r *pb.RangeRequest) error {
	return s.b.Store().Auth().CheckRange(orEmpty(caller(ctx)), r.Key, r.RangeEnd)
}

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	if !r.Serializable {
		if err := s.b.LinearizableRead(ctx); err != nil {
			return nil, toGRPCError(err)
		}
	}
	if err := s.authorizeRead(ctx, r); err != nil {
		return nil, toGRPCError(err)
	}
	resp, err := s.b.Store().Range(r)
	if err == nil {
		err = checkStale(s.b.Store(), caller(ctx))
	}
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// RangeStream serves a range in chunks, all at the revision current when it
// starts; the last chunk carries the header, More and Count, as etcd's does.
// Chunks grow or shrink to land near MaxRequestBytes.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream pb.KV_RangeStreamServer) error {
	if err := checkRange(r); err != nil {
		return err
	}
	// Keys come in ascending key order; nothing else can be chunked.
	if r.SortOrder != pb.RangeRequest_NONE && (r.SortTarget != pb.RangeRequest_KEY || r.SortOrder != pb.RangeRequest_ASCEND) {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support custom sort orders")
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		return status.Errorf(codes.Unimplemented, "RangeStream does not support revision filters")
	}
	if !r.Serializable {
		if err := s.b.LinearizableRead(stream.Context()); err != nil {
			return toGRPCError(err)
		}
	}
	if err := s.authorizeRead(stream.Context(), r); err != nil {
		return toGRPCError(err)
	}
	st := s.b.Store()
	send := func(resp *pb.RangeResponse) error {
		if resp.Header != nil {
			rev := resp.Header.Revision
			s.hdr.fill(resp.Header)
			resp.Header.Revision = rev
		}
		return stream.Send(&pb.RangeStreamResponse{RangeResponse: resp})
	}
	if r.CountOnly {
		resp, err := st.Range(r)
		if err != nil {
			return toGRPCError(err)
		}
		return send(&pb.RangeResponse{Header: &pb.ResponseHeader{Revision: resp.Header.GetRevision()}, Count: resp.Count})
	}
	total := r.Limit
	if total <= 0 {
		total = math.MaxInt64
	}
	q := proto.Clone(r).(*pb.RangeRequest)
	q.Limit = min(firstChunk, total)
	var count, rev int64
	for {
		resp, err := st.Range(q)
		if err != nil {
			return toGRPCError(err)
		}
		if rev == 0 {
			rev = resp.Header.GetRevision()
			if q.Revision == 0 {
				q.Revision = rev // later chunks see the same revision
			}
		}
		count += int64(len(resp.Kvs))
		out := &pb.RangeResponse{Kvs: resp.Kvs}
		done := !resp.More || count >= total
		var next []byte
		if resp.More && len(resp.Kvs) > 0 {
			next = append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0)
		}
		if done {
			out.Header = &pb.ResponseHeader{Revision: rev}
			out.More = resp.More
			out.Count = count
			if resp.More {
				rest, err := st.Range(&pb.RangeRequest{Key: next, RangeEnd: q.RangeEnd, Revision: q.Revision, CountOnly: true})
				if err != nil {
					return toGRPCError(err)
				}
				out.Count += rest.Count
			}
		}
		if err := send(out); err != nil {
			return err
		}
		if done {
			return nil
		}
		q.Key = next
		size := proto.Size(resp)
		switch target := int(s.opts.MaxRequestBytes); {
		case size < target/2:
			q.Limit *= 2
		case size > target*2:
			q.Limit = max(q.Limit/2, 1)
		}
		q.Limit = min(q.Limit, total-count)
	}
}

// firstChunk is how many keys the first RangeStream chunk holds.
const firstChunk = 10

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	if err := checkQuota(ctx, s.b, s.opts, putCost(r)); err != nil {
		return nil, err
	}
	resp, err := propose[*pb.PutResponse](ctx, s.b, &pb.InternalRaftRequest{Put: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	resp, err := propose[*pb.DeleteRangeResponse](ctx, s.b, &pb.InternalRaftRequest{DeleteRange: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := checkTxn(r, int(s.opts.MaxTxnOps)); err != nil {
		return nil, err
	}
	if _, _, err := checkDuplicates(r.Success); err != nil {
		return nil, err
	}
	if _, _, err := checkDuplicates(r.Failure); err != nil {
		return nil, err
	}
	if !isReadOnly(r) {
		if err := checkQuota(ctx, s.b, s.opts, txnCost(r)); err != nil {
			return nil, err
		}
	}
	// A read-only txn goes through Raft too: correct, and rare enough.
	resp, err := propose[*pb.TxnResponse](ctx, s.b, &pb.InternalRaftRequest{Txn: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := propose[*pb.CompactionResponse](ctx, s.b, &pb.InternalRaftRequest{Compaction: r})
	if err != nil {
		return nil, err
	}
	if r.Physical {
		// As etcd: answer once the old revisions are gone from this
		// member's backend, and that is committed.
		if err := s.b.Store().WaitCompaction(ctx); err != nil {
			return nil, toGRPCError(err)
		}
		if err := s.b.Store().Commit(); err != nil {
			return nil, toGRPCError(err)
		}
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// propose sends r through Raft and returns the applied response as T, with a
// header, or the mapped error. The caller the auth interceptor found rides
// in r's header: the store authorises r by it when it applies r.
func propose[T interface {
	proto.Message
	GetHeader() *pb.ResponseHeader
}](ctx context.Context, b Backend, r *pb.InternalRaftRequest) (T, error) {
	var zero T
	if ai := caller(ctx); ai != nil {
		r.Header = &pb.RequestHeader{Username: ai.Username, AuthRevision: ai.Revision}
	}
	msg, err := b.Propose(ctx, r)
	if err != nil {
		return zero, toGRPCError(err)
	}
	resp, ok := msg.(T)
	if !ok {
		return zero, toGRPCError(fmt.Errorf("apply %T: unexpected response %T", r, msg))
	}
	if resp.GetHeader() == nil {
		// Every response type has a Header field; set it through reflection.
		m := resp.ProtoReflect()
		f := m.Descriptor().Fields().ByName("header")
		m.Set(f, m.NewField(f))
	}
	return resp, nil
}

// Backend quota costs, as etcd estimates them.
const (
	kvOverhead    = 256
	leaseOverhead = 64
)

func putCost(r *pb.PutRequest) int64 { return int64(kvOverhead + len(r.Key) + len(r.Value)) }

func txnCost(r *pb.TxnRequest) int64 {
	branch := func(ops []*pb.RequestOp) int64 {
		var c int64
		for _, op := range ops {
			switch u := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				c += putCost(u.RequestPut)
			case *pb.RequestOp_RequestTxn:
				c += txnCost(u.RequestTxn)
			}
		}
		return c
	}
	return max(branch(r.Success), branch(r.Failure))
}

// checkQuota refuses a write that would grow the backend past the quota,
// raising the NOSPACE alarm through Raft first, as etcd's quota layer does.
func checkQuota(ctx context.Context, b Backend, opts Options, cost int64) error {
	if opts.QuotaBackendBytes <= 0 || b.Store().Size()+cost <= opts.QuotaBackendBytes {
		return nil
	}
	_, _ = b.Propose(ctx, &pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{
		Action:   pb.AlarmRequest_ACTIVATE,
		MemberID: b.MemberID(),
		Alarm:    pb.AlarmType_NOSPACE,
	}})
	return rpctypes.ErrGRPCNoSpace
}
