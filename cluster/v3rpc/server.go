package v3rpc

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/store"
)

// Backend is what the services need from a member.
type Backend interface {
	// ClusterID, MemberID, Term, Leader, CommittedIndex and AppliedIndex
	// describe the member for headers and Status.
	ClusterID() uint64
	MemberID() uint64
	Term() uint64
	Leader() uint64
	CommittedIndex() uint64
	AppliedIndex() uint64
	// Store is the applied state; read it only after LinearizableRead (or for
	// serializable reads).
	Store() *store.Store
	// Propose replicates r through Raft and returns the store's response once
	// it is applied on this member, or the request-level error.
	Propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error)
	// LinearizableRead returns once this member has applied everything
	// committed when it was called.
	LinearizableRead(ctx context.Context) error
	// Members lists the cluster's members.
	Members() []*pb.Member
	// NewLeaseID returns a fresh lease ID, unique in the cluster.
	NewLeaseID() int64
	// Done is closed when the member stops.
	Done() <-chan struct{}
}

// Options are the limits the services enforce.
type Options struct {
	MaxRequestBytes   uint
	MaxTxnOps         uint
	QuotaBackendBytes int64
	// TLS is nil for plain http:// client URLs.
	TLS    *tls.Config
	Logger *slog.Logger
}

// grpcOverheadBytes is what etcd adds to MaxRequestBytes for the gRPC
// receive limit, so that a request just below the limit still arrives and
// gets the proper "request is too large" error.
const grpcOverheadBytes = 512 * 1024

// NewServer builds a gRPC server with every service registered over b;
// extra options come after tend's own.
func NewServer(b Backend, opts Options, extra ...grpc.ServerOption) *grpc.Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(opts.MaxRequestBytes) + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		// etcd clients ping every few seconds even without streams.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.ChainUnaryInterceptor(leaderUnary(b)),
		grpc.ChainStreamInterceptor(leaderStream(b)),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    2 * time.Hour,
			Timeout: 20 * time.Second,
		}),
	}
	if opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	gs := grpc.NewServer(append(gopts, extra...)...)
	h := header{b: b}
	pb.RegisterKVServer(gs, &kvServer{b: b, hdr: h, opts: opts})
	pb.RegisterWatchServer(gs, &watchServer{b: b, hdr: h, opts: opts})
	pb.RegisterLeaseServer(gs, &leaseServer{b: b, hdr: h, opts: opts})
	pb.RegisterClusterServer(gs, &clusterServer{b: b, hdr: h})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{b: b, hdr: h, opts: opts})
	pb.RegisterAuthServer(gs, &authServer{hdr: h})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

// header fills response headers as etcd does.
type header struct{ b Backend }

// fill sets the member's IDs and term, keeping a revision already set.
func (h header) fill(rh *pb.ResponseHeader) {
	if rh == nil {
		return
	}
	rh.ClusterId = h.b.ClusterID()
	rh.MemberId = h.b.MemberID()
	rh.RaftTerm = h.b.Term()
	if rh.Revision == 0 {
		rh.Revision = h.b.Store().Rev()
	}
}

// new returns a filled header at revision rev.
func (h header) new(rev int64) *pb.ResponseHeader {
	rh := &pb.ResponseHeader{Revision: rev}
	h.fill(rh)
	return rh
}
