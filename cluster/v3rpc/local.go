package v3rpc

import (
	"context"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// local serves clientv3 calls inside this process: the Lock and Election
// services run go.etcd.io/etcd/client/v3/concurrency on it, as etcd runs
// them on its in-process client. A call goes through the same interceptors
// (leader, learner, auth) and handlers as one from the network, with the
// caller's context: its token and TLS peer, so the inner calls are
// authorised as the caller of the outer one.
type local struct {
	kv     *kvServer
	lease  *leaseServer
	watch  *watchServer
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
}

// client returns a clientv3 client whose calls carry ctx's values (the
// caller) but not its cancellation, so that clean-up after a cancelled call
// (concurrency's Unlock) still runs. Close it when done.
func (l *local) client(ctx context.Context) *clientv3.Client {
	c := clientv3.NewCtxClient(context.WithoutCancel(ctx))
	c.KV = clientv3.NewKVFromKVClient(localKV{l}, c)
	c.Lease = clientv3.NewLeaseFromLeaseClient(localLease{l}, c, time.Second)
	c.Watcher = clientv3.NewWatchFromWatchClient(localWatch{l}, c)
	return c
}

// serverContext is what a handler would see of a client call made with
// ctx: the caller's incoming metadata joined with what the client adds
// (clientv3 marks require-leader calls in outgoing metadata).
func serverContext(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out, _ := metadata.FromOutgoingContext(ctx)
	return metadata.NewIncomingContext(ctx, metadata.Join(in, out))
}

// callLocal runs a unary handler through the interceptors. Messages are
// cloned both ways, as marshalling would: neither side may keep or change
// what the other holds.
func callLocal[Req, Resp proto.Message](ctx context.Context, l *local, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	var zero Resp
	resp, err := l.unary(serverContext(ctx), proto.Clone(req), &grpc.UnaryServerInfo{FullMethod: method},
		func(ctx context.Context, r any) (any, error) { return h(ctx, r.(Req)) })
	if err != nil {
		return zero, err
	}
	return proto.Clone(resp.(Resp)).(Resp), nil
}

var errLocalUnimplemented = status.Error(codes.Unimplemented, "not served to in-process clients")

type localKV struct{ l *local }

func (k localKV) Range(ctx context.Context, r *pb.RangeRequest, _ ...grpc.CallOption) (*pb.RangeResponse, error) {
	return callLocal(ctx, k.l, pb.KV_Range_FullMethodName, r, k.l.kv.Range)
}

func (k localKV) RangeStream(context.Context, *pb.RangeRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[pb.RangeStreamResponse], error) {
	return nil, errLocalUnimplemented
}

func (k localKV) Put(ctx context.Context, r *pb.PutRequest, _ ...grpc.CallOption) (*pb.PutResponse, error) {
	return callLocal(ctx, k.l, pb.KV_Put_FullMethodName, r, k.l.kv.Put)
}

func (k localKV) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest, _ ...grpc.CallOption) (*pb.DeleteRangeResponse, error) {
	return callLocal(ctx, k.l, pb.KV_DeleteRange_FullMethodName, r, k.l.kv.DeleteRange)
}

func (k localKV) Txn(ctx context.Context, r *pb.TxnRequest, _ ...grpc.CallOption) (*pb.TxnResponse, error) {
	return callLocal(ctx, k.l, pb.KV_Txn_FullMethodName, r, k.l.kv.Txn)
}

func (k localKV) Compact(ctx context.Context, r *pb.CompactionRequest, _ ...grpc.CallOption) (*pb.CompactionResponse, error) {
	return callLocal(ctx, k.l, pb.KV_Compact_FullMethodName, r, k.l.kv.Compact)
}

type localLease struct{ l *local }

func (s localLease) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest, _ ...grpc.CallOption) (*pb.LeaseGrantResponse, error) {
	return callLocal(ctx, s.l, pb.Lease_LeaseGrant_FullMethodName, r, s.l.lease.LeaseGrant)
}

func (s localLease) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest, _ ...grpc.CallOption) (*pb.LeaseRevokeResponse, error) {
	return callLocal(ctx, s.l, pb.Lease_LeaseRevoke_FullMethodName, r, s.l.lease.LeaseRevoke)
}

func (s localLease) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest, _ ...grpc.CallOption) (*pb.LeaseTimeToLiveResponse, error) {
	return callLocal(ctx, s.l, pb.Lease_LeaseTimeToLive_FullMethodName, r, s.l.lease.LeaseTimeToLive)
}

func (s localLease) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest, _ ...grpc.CallOption) (*pb.LeaseLeasesResponse, error) {
	return callLocal(ctx, s.l, pb.Lease_LeaseLeases_FullMethodName, r, s.l.lease.LeaseLeases)
}

func (s localLease) LeaseKeepAlive(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse], error) {
	return openPipe[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse](ctx, s.l.stream, pb.Lease_LeaseKeepAlive_FullMethodName,
		func(ss grpc.ServerStream) error {
			return s.l.lease.LeaseKeepAlive(serverHalf[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]{ss})
		}), nil
}

type localWatch struct{ l *local }

func (w localWatch) Watch(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[pb.WatchRequest, pb.WatchResponse], error) {
	return openPipe[pb.WatchRequest, pb.WatchResponse](ctx, w.l.stream, pb.Watch_Watch_FullMethodName,
		func(ss grpc.ServerStream) error {
			return w.l.watch.Watch(serverHalf[pb.WatchRequest, pb.WatchResponse]{ss})
		}), nil
}

// pipe joins a client stream to a handler running in its own goroutine.
// Channels are unbuffered: a Send returns once the other side has the
// message, so when the handler returns, everything it sent was received.
type pipe[Req, Resp any] struct {
	clientCtx context.Context
	ctx       context.Context // the handler's; cancelled when it returns
	reqs      chan *Req
	resps     chan *Resp
	closeOnce sync.Once
	sendDone  chan struct{} // closed by CloseSend
	done      chan struct{} // closed when the handler has returned
	err       error         // the handler's result, set before done
}

// openPipe starts handle behind the stream interceptors and returns the
// client's end.
func openPipe[Req, Resp any](ctx context.Context, ic grpc.StreamServerInterceptor, method string, handle func(grpc.ServerStream) error) *pipe[Req, Resp] {
	sctx, cancel := context.WithCancel(serverContext(ctx))
	p := &pipe[Req, Resp]{
		clientCtx: ctx,
		ctx:       sctx,
		reqs:      make(chan *Req),
		resps:     make(chan *Resp),
		sendDone:  make(chan struct{}),
		done:      make(chan struct{}),
	}
	info := &grpc.StreamServerInfo{FullMethod: method, IsClientStream: true, IsServerStream: true}
	go func() {
		defer close(p.done)
		defer cancel()
		p.err = ic(nil, (*pipeServer[Req, Resp])(p), info, func(_ any, ss grpc.ServerStream) error { return handle(ss) })
	}()
	return p
}

func contextStatus(err error) error { return status.FromContextError(err).Err() }

// The client's end: grpc.BidiStreamingClient.

func (p *pipe[Req, Resp]) Send(r *Req) error { return p.SendMsg(r) }

func (p *pipe[Req, Resp]) Recv() (*Resp, error) {
	select {
	case r := <-p.resps:
		return r, nil
	case <-p.done:
		if p.err != nil {
			return nil, p.err
		}
		return nil, io.EOF
	case <-p.clientCtx.Done():
		return nil, contextStatus(p.clientCtx.Err())
	}
}

func (p *pipe[Req, Resp]) SendMsg(m any) error {
	r := any(proto.Clone(m.(proto.Message))).(*Req)
	select {
	case p.reqs <- r:
		return nil
	case <-p.done:
		return io.EOF
	case <-p.clientCtx.Done():
		return contextStatus(p.clientCtx.Err())
	}
}

func (p *pipe[Req, Resp]) RecvMsg(m any) error {
	r, err := p.Recv()
	if err != nil {
		return err
	}
	proto.Merge(m.(proto.Message), any(r).(proto.Message))
	return nil
}

func (p *pipe[Req, Resp]) CloseSend() error {
	p.closeOnce.Do(func() { close(p.sendDone) })
	return nil
}

func (p *pipe[Req, Resp]) Header() (metadata.MD, error) { return metadata.MD{}, nil }
func (p *pipe[Req, Resp]) Trailer() metadata.MD         { return metadata.MD{} }
func (p *pipe[Req, Resp]) Context() context.Context     { return p.clientCtx }

// pipeServer is the handler's end: grpc.ServerStream.
type pipeServer[Req, Resp any] pipe[Req, Resp]

func (s *pipeServer[Req, Resp]) Context() context.Context     { return s.ctx }
func (s *pipeServer[Req, Resp]) SetHeader(metadata.MD) error  { return nil }
func (s *pipeServer[Req, Resp]) SendHeader(metadata.MD) error { return nil }
func (s *pipeServer[Req, Resp]) SetTrailer(metadata.MD)       {}

func (s *pipeServer[Req, Resp]) SendMsg(m any) error {
	r := any(proto.Clone(m.(proto.Message))).(*Resp)
	select {
	case s.resps <- r:
		return nil
	case <-s.ctx.Done():
		return contextStatus(s.ctx.Err())
	}
}

func (s *pipeServer[Req, Resp]) RecvMsg(m any) error {
	select {
	case r := <-s.reqs:
		proto.Merge(m.(proto.Message), any(r).(proto.Message))
		return nil
	case <-s.sendDone:
		return io.EOF
	case <-s.ctx.Done():
		return contextStatus(s.ctx.Err())
	}
}

// serverHalf gives a grpc.ServerStream (maybe wrapped by an interceptor)
// the typed Send and Recv a handler takes.
type serverHalf[Req, Resp any] struct{ grpc.ServerStream }

func (h serverHalf[Req, Resp]) Send(r *Resp) error { return h.SendMsg(r) }

func (h serverHalf[Req, Resp]) Recv() (*Req, error) {
	r := new(Req)
	if err := h.RecvMsg(r); err != nil {
		return nil, err
	}
	return r, nil
}
