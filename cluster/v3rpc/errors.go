package v3rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tendkv/tend/auth"
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

	// Membership changes.
	ErrMemberExists          = errors.New("etcdserver: member ID already exist")
	ErrPeerURLExists         = errors.New("etcdserver: Peer URLs already exists")
	ErrNotEnoughStarted      = errors.New("etcdserver: re-configuration failed due to not enough started members")
	ErrMemberBadURLs         = errors.New("etcdserver: given member URLs are invalid")
	ErrMemberNotFound        = errors.New("etcdserver: member not found")
	ErrMemberNotLearner      = errors.New("etcdserver: can only promote a learner member")
	ErrLearnerNotReady       = errors.New("etcdserver: can only promote a learner member which is in sync with leader")
	ErrTooManyLearners       = errors.New("etcdserver: too many learner members in cluster")
	ErrBadLeaderTransferee   = errors.New("etcdserver: bad leader transferee")
	ErrUnhealthy             = errors.New("etcdserver: unhealthy cluster")
	ErrNotSupportedByLearner = errors.New("etcdserver: rpc not supported for learner")
	ErrLeaderTransferTimeout = errors.New("etcdserver: request timed out, leader transfer took too long")
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

	store.ErrRootUserNotExist:     rpctypes.ErrGRPCRootUserNotExist,
	store.ErrRootRoleNotExist:     rpctypes.ErrGRPCRootRoleNotExist,
	store.ErrUserAlreadyExist:     rpctypes.ErrGRPCUserAlreadyExist,
	store.ErrUserEmpty:            rpctypes.ErrGRPCUserEmpty,
	store.ErrUserNotFound:         rpctypes.ErrGRPCUserNotFound,
	store.ErrRoleAlreadyExist:     rpctypes.ErrGRPCRoleAlreadyExist,
	store.ErrRoleNotFound:         rpctypes.ErrGRPCRoleNotFound,
	store.ErrRoleEmpty:            rpctypes.ErrGRPCRoleEmpty,
	store.ErrAuthFailed:           rpctypes.ErrGRPCAuthFailed,
	store.ErrPermissionNotGiven:   rpctypes.ErrGRPCPermissionNotGiven,
	store.ErrPermissionDenied:     rpctypes.ErrGRPCPermissionDenied,
	store.ErrRoleNotGranted:       rpctypes.ErrGRPCRoleNotGranted,
	store.ErrPermissionNotGranted: rpctypes.ErrGRPCPermissionNotGranted,
	store.ErrAuthNotEnabled:       rpctypes.ErrGRPCAuthNotEnabled,
	store.ErrInvalidAuthMgmt:      rpctypes.ErrGRPCInvalidAuthMgmt,
	store.ErrAuthOldRevision:      rpctypes.ErrGRPCAuthOldRevision,
	auth.ErrInvalidAuthToken:      rpctypes.ErrGRPCInvalidAuthToken,
	// store.ErrNoPasswordUser stays unmapped: etcd answers it as Unknown
	// with its own text.

	ErrStopped:         rpctypes.ErrGRPCStopped,
	ErrNoLeader:        rpctypes.ErrGRPCNoLeader,
	ErrNotLeader:       rpctypes.ErrGRPCNotLeader,
	ErrTimeout:         rpctypes.ErrGRPCTimeout,
	ErrNoSpace:         rpctypes.ErrGRPCNoSpace,
	ErrRequestTooLarge: rpctypes.ErrGRPCRequestTooLarge,
	ErrTooManyRequests: rpctypes.ErrTooManyRequests,
	ErrCorrupt:         rpctypes.ErrGRPCCorrupt,

	ErrMemberExists:          rpctypes.ErrGRPCMemberExist,
	ErrPeerURLExists:         rpctypes.ErrGRPCPeerURLExist,
	ErrNotEnoughStarted:      rpctypes.ErrGRPCMemberNotEnoughStarted,
	ErrMemberBadURLs:         rpctypes.ErrGRPCMemberBadURLs,
	ErrMemberNotFound:        rpctypes.ErrGRPCMemberNotFound,
	ErrMemberNotLearner:      rpctypes.ErrGRPCMemberNotLearner,
	ErrLearnerNotReady:       rpctypes.ErrGRPCLearnerNotReady,
	ErrTooManyLearners:       rpctypes.ErrGRPCTooManyLearners,
	ErrBadLeaderTransferee:   rpctypes.ErrGRPCBadLeaderTransferee,
	ErrUnhealthy:             rpctypes.ErrGRPCUnhealthy,
	ErrNotSupportedByLearner: rpctypes.ErrGRPCNotSupportedForLearner,
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

// errNotSupported answers the calls tend does not serve yet, in etcd's
// style.
func errNotSupported(what string) error {
	return status.Errorf(codes.Unimplemented, "etcdserver: %s is not supported yet", what)
}
