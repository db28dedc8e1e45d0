package v3rpc

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tendkv/tend/store"
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
		if b.IsLearner() && !learnerServes(req) {
			return nil, rpctypes.ErrGRPCNotSupportedForLearner
		}
		return handler(ctx, req)
	}
}

func leaderStream(b Backend, lw *leaderWatch) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if b.IsLearner() && info.FullMethod != pb.Maintenance_Snapshot_FullMethodName {
			return rpctypes.ErrGRPCNotSupportedForLearner
		}
		if requireLeader(ss.Context()) {
			if b.Leader() == 0 {
				return rpctypes.ErrGRPCNoLeader
			}
			return lw.stream(srv, ss, handler)
		}
		return handler(srv, ss)
	}
}

// learnerServes reports whether a learner answers req: a learner's state may
// lag, so it serves only what etcd lets it serve.
func learnerServes(req any) bool {
	switch r := req.(type) {
	case *pb.StatusRequest:
		return true
	case *pb.RangeRequest:
		return r.Serializable
	}
	return false
}

// authUnary finds the caller of every call but Authenticate (which carries a
// password instead, and maybe a stale token to ignore) and the health
// service, and refuses the call when its token is invalid or when the call
// needs what the caller lacks. Finer checks happen in the handlers (reads)
// and in the store (everything proposed, which carries the caller in its
// header).
func authUnary(a *authn) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, "/etcdserverpb.") || info.FullMethod == pb.Auth_Authenticate_FullMethodName {
			return handler(ctx, req)
		}
		if r, ok := req.(*pb.MemberAddRequest); ok {
			// Etcd parses a new member's URLs before it asks who calls:
			// bad URLs are reported to anyone, with etcd's own parser.
			if _, err := types.NewURLs(r.PeerURLs); err != nil {
				return nil, rpctypes.ErrGRPCMemberBadURLs
			}
		}
		ai, err := a.info(ctx)
		if err != nil {
			return nil, toGRPCError(err)
		}
		ctx = withCaller(ctx, ai)
		st := a.b.Store()
		v := st.Auth()
		stale := false
		switch info.FullMethod {
		case pb.KV_Compact_FullMethodName,
			pb.Maintenance_Defragment_FullMethodName, pb.Maintenance_Hash_FullMethodName,
			pb.Maintenance_HashKV_FullMethodName, pb.Maintenance_MoveLeader_FullMethodName,
			pb.Maintenance_Downgrade_FullMethodName,
			pb.Cluster_MemberAdd_FullMethodName, pb.Cluster_MemberRemove_FullMethodName,
			pb.Cluster_MemberUpdate_FullMethodName, pb.Cluster_MemberPromote_FullMethodName:
			err = requireAdmin(v, ai)
		case pb.Maintenance_Alarm_FullMethodName:
			if r, ok := req.(*pb.AlarmRequest); ok && r.Action == pb.AlarmRequest_GET {
				err = requireUser(v, ai)
			} else {
				err = requireAdmin(v, ai)
			}
		case pb.Maintenance_Status_FullMethodName, pb.Cluster_MemberList_FullMethodName,
			pb.Lease_LeaseGrant_FullMethodName, pb.Lease_LeaseRevoke_FullMethodName:
			err = requireUser(v, ai)
		case pb.Lease_LeaseTimeToLive_FullMethodName:
			err = requireUser(v, ai)
			if r, ok := req.(*pb.LeaseTimeToLiveRequest); ok && r.Keys && err == nil {
				err, stale = checkLeaseKeys(st, v, ai, false, r.ID), true
			}
		case pb.Lease_LeaseLeases_FullMethodName:
			var ids []int64
			for _, l := range st.Leases() {
				ids = append(ids, l.ID)
			}
			err, stale = checkLeaseKeys(st, v, ai, false, ids...), true
		}
		if err != nil {
			return nil, toGRPCError(err)
		}
		resp, err := handler(ctx, req)
		if err == nil && stale && v.Enabled() && v.Revision() != st.Auth().Revision() {
			return nil, toGRPCError(store.ErrAuthOldRevision)
		}
		return resp, err
	}
}

// authStream does for streams what authUnary does for calls: Snapshot needs
// root; each keep-alive needs write on the lease's keys (or root), checked
// as it arrives; a watch checks each create itself (a refused create cancels
// that watch, not the stream).
func authStream(a *authn) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		switch info.FullMethod {
		case pb.Maintenance_Snapshot_FullMethodName:
			ai, err := a.info(ss.Context())
			if err == nil {
				err = requireAdmin(a.b.Store().Auth(), ai)
			}
			if err != nil {
				return toGRPCError(err)
			}
		case pb.Lease_LeaseKeepAlive_FullMethodName:
			return handler(srv, &keepAliveAuth{ServerStream: ss, a: a})
		}
		return handler(srv, ss)
	}
}

// keepAliveAuth checks each keep-alive request before the handler sees it;
// a refusal ends the stream with the error, as etcd's does.
type keepAliveAuth struct {
	grpc.ServerStream
	a *authn
}

func (k *keepAliveAuth) RecvMsg(m any) error {
	if err := k.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	r, ok := m.(*pb.LeaseKeepAliveRequest)
	if !ok {
		return nil
	}
	st := k.a.b.Store()
	v := st.Auth()
	if !v.Enabled() {
		return nil
	}
	ai, err := k.a.info(k.Context())
	if err == nil {
		err = checkLeaseKeys(st, v, ai, true, r.ID)
	}
	if err == nil && v.Revision() != st.Auth().Revision() {
		err = store.ErrAuthOldRevision
	}
	return toGRPCError(err)
}
