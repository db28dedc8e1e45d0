package v3rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tendkv/tend/store"
)

// Errors a Backend returns. Their text follows etcd's etcdserver errors; the
// client sees the rpctypes value they map to below.
var (
	ErrStopped         = errors.New("etcdserver: server stopped")
	ErrNoLeader        = errors.New("etcdserver: no leader")
	ErrNotLeader       = errors.New("etcdserver: not leader")
	ErrTimeout         = errors.New("etcdserver: request timed out")
	ErrNoSpace         = errors.New("etcdserver: no space")
	ErrRequestTooLarge = errors.New("etcdserver: request is too large")
	ErrTooManyRequests = errors.New("etcdserver: too many requests")
	ErrCorrupt         = errors.New("etcdserver: corrupt cluster")
)

// toGRPC is the one table from tend's errors to etcd's wire errors.
// clientv3 matches on their text, so only rpctypes values go out.
var toGRPC = map[error]error{
	store.ErrCompacted:        rpctypes.ErrGRPCCompacted,
	store.ErrFutureRev:        rpctypes.ErrGRPCFutureRev,
	store.ErrLeaseNotFound:    rpctypes.ErrGRPCLeaseNotFound,
	store.ErrLeaseExists:      rpctypes.ErrGRPCLeaseExist,
	store.ErrLeaseTTLTooLarge: rpctypes.ErrGRPCLeaseTTLTooLarge,
	store.ErrKeyNotFound:      rpctypes.ErrGRPCKeyNotFound,
	store.ErrNotPrimary:       rpctypes.ErrGRPCNotLeader,
	store.ErrClosed:           rpctypes.ErrGRPCStopped,

	ErrStopped:         rpctypes.ErrGRPCStopped,
	ErrNoLeader:        rpctypes.ErrGRPCNoLeader,
	ErrNotLeader:       rpctypes.ErrGRPCNotLeader,
	ErrTimeout:         rpctypes.ErrGRPCTimeout,
	ErrNoSpace:         rpctypes.ErrGRPCNoSpace,
	ErrRequestTooLarge: rpctypes.ErrGRPCRequestTooLarge,
	ErrTooManyRequests: rpctypes.ErrTooManyRequests,
	ErrCorrupt:         rpctypes.ErrGRPCCorrupt,
}

// toGRPCError maps err to its etcd wire error. Context errors pass through
// (gRPC turns them into Canceled/DeadlineExceeded as etcd's do); errors that
// already carry a gRPC status (validation) pass through; anything else is
// Unknown with its text.
func toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	for from, to := range toGRPC {
		if errors.Is(err, from) {
			return to
		}
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}

// errNotSupported answers the membership and auth calls tend does not serve
// yet, in etcd's style.
func errNotSupported(what string) error {
	return status.Errorf(codes.Unimplemented, "etcdserver: %s is not supported yet", what)
}
