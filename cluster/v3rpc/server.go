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

	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"

	"github.com/tendkv/tend/auth"
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

	// LeaseRenew and LeaseTimeToLive answer at the leader, which alone
	// keeps lease time (a follower asks it): the lease's TTL after a
	// keep-alive (0 for an unknown lease), and its time to live.
	LeaseRenew(ctx context.Context, id int64) (int64, error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	// IsLearner reports whether this member is a learner (it serves only
	// serializable ranges, Status and Snapshot).
	IsLearner() bool
	// AddMember, RemoveMember, UpdateMember and PromoteMember change the
	// membership through Raft and return the members once applied here.
	AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error)
	RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error)
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error)
	// MoveLeader hands leadership to member target and waits until it leads.
	MoveLeader(ctx context.Context, target uint64) error
}

// Options are the limits the services enforce.
type Options struct {
	MaxRequestBytes   uint
	MaxTxnOps         uint
	QuotaBackendBytes int64
	// TLS is nil for plain http:// client URLs.
	TLS    *tls.Config
	Logger *slog.Logger
	// Tokens issue and check auth tokens (--auth-token); nil: simple
	// tokens with the default TTL. NewServer installs them in the store.
	Tokens auth.Tokens
	// Passwords hash and check passwords (--bcrypt-cost); nil: the default
	// cost.
	Passwords *auth.Passwords
	// Unary and Stream, when set, run before tend's own interceptors on
	// every call from the network (metrics), so they see every refusal.
	Unary  grpc.UnaryServerInterceptor
	Stream grpc.StreamServerInterceptor
	// ElectionTimeout paces the check that cancels streams requiring a
	// leader when the member has none (0: one second).
	ElectionTimeout time.Duration
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
	if opts.Tokens == nil {
		opts.Tokens, _ = auth.NewTokens("simple", auth.Options{}) // cannot fail
	}
	if opts.Passwords == nil {
		opts.Passwords = auth.DefaultPasswords()
	}
	b.Store().SetTokenIssuer(opts.Tokens)
	a := &authn{b: b, tokens: opts.Tokens, lg: opts.Logger}
	if opts.ElectionTimeout <= 0 {
		opts.ElectionTimeout = time.Second
	}
	lw := newLeaderWatch(b)
	go lw.run(opts.ElectionTimeout) // stops when the member does
	unary := chainUnary(leaderUnary(b), authUnary(a))
	stream := chainStream(leaderStream(b, lw), authStream(a))
	uics, sics := []grpc.UnaryServerInterceptor{unary}, []grpc.StreamServerInterceptor{stream}
	if opts.Unary != nil {
		uics = append([]grpc.UnaryServerInterceptor{opts.Unary}, uics...)
	}
	if opts.Stream != nil {
		sics = append([]grpc.StreamServerInterceptor{opts.Stream}, sics...)
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
		grpc.ChainUnaryInterceptor(uics...),
		grpc.ChainStreamInterceptor(sics...),
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
	kv := &kvServer{b: b, hdr: h, opts: opts, auth: a}
	watch := &watchServer{b: b, hdr: h, opts: opts, auth: a}
	lease := &leaseServer{b: b, hdr: h, opts: opts}
	pb.RegisterKVServer(gs, kv)
	pb.RegisterWatchServer(gs, watch)
	pb.RegisterLeaseServer(gs, lease)
	pb.RegisterClusterServer(gs, &clusterServer{b: b})
	pb.RegisterMaintenanceServer(gs, &maintenanceServer{b: b, hdr: h, opts: opts})
	pb.RegisterAuthServer(gs, &authServer{b: b, hdr: h, auth: a, passwords: opts.Passwords})
	l := &local{kv: kv, lease: lease, watch: watch, unary: unary, stream: stream}
	v3lockpb.RegisterLockServer(gs, &lockServer{l: l})
	epb.RegisterElectionServer(gs, &electionServer{l: l})
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

// chainUnary runs interceptors in order around a handler, as
// grpc.ChainUnaryInterceptor does; in-process calls need the chain as a value.
func chainUnary(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// chainStream is chainUnary for streams.
func chainStream(ics ...grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(srv any, ss grpc.ServerStream) error { return ic(srv, ss, info, next) }
		}
		return h(srv, ss)
	}
}
