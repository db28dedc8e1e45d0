package v3rpc

import (
	"context"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requireLeader reports whether the client asked, with clientv3's
// WithRequireLeader, to fail rather than wait when there is no leader.
func requireLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	ks := md[rpctypes.MetadataRequireLeaderKey]
	return len(ks) > 0 && ks[0] == rpctypes.MetadataHasLeader
}

// leaderUnary and leaderStream refuse calls that require a leader while the
// member knows none, as etcd's interceptors do.
func leaderUnary(b Backend) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if requireLeader(ctx) && b.Leader() == 0 {
			return nil, rpctypes.ErrGRPCNoLeader
		}
		return handler(ctx, req)
	}
}

func leaderStream(b Backend) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if requireLeader(ss.Context()) && b.Leader() == 0 {
			return rpctypes.ErrGRPCNoLeader
		}
		return handler(srv, ss)
	}
}
