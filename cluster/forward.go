package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/cluster/v3rpc"
	"github.com/tendkv/tend/store"
)

// Only the leader keeps lease time and knows how far a learner has caught
// up, so a follower forwards lease keep-alives, lease TTL queries and
// learner promotion to it, as etcd does: over the peer transport, with the
// members' own credentials. The follower has checked the caller's
// permissions on its own copy of the auth state first; the leader trusts
// its peers.

// Methods of the calls between members.
const (
	callLeaseRenew = "lease-renew"    // 8-byte lease ID → 8-byte TTL
	callLeaseTTL   = "lease-ttl"      // LeaseTimeToLiveRequest → Response
	callPromote    = "member-promote" // 8-byte member ID → nothing
)

// callErrors are the errors a call carries back by their text.
var callErrors = []error{
	store.ErrLeaseNotFound, v3rpc.ErrNotLeader, v3rpc.ErrNoLeader, v3rpc.ErrStopped, v3rpc.ErrTimeout,
	v3rpc.ErrMemberNotFound, v3rpc.ErrMemberNotLearner, v3rpc.ErrLearnerNotReady,
}

// callRetry is how long a forwarded call waits before trying again when
// there is no leader yet or the leader just changed.
const callRetry = 50 * time.Millisecond

// answerCall serves another member's call; only the leader answers.
func (m *Member) answerCall(ctx context.Context, method string, req []byte) ([]byte, error) {
	if m.lead.Load() != m.id {
		return nil, v3rpc.ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	switch method {
	case callLeaseRenew:
		if len(req) != 8 {
			return nil, fmt.Errorf("%s: want an 8-byte lease ID", method)
		}
		ttl, err := m.renewHere(ctx, int64(binary.BigEndian.Uint64(req)))
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(nil, uint64(ttl)), nil
	case callLeaseTTL:
		var r pb.LeaseTimeToLiveRequest
		if err := proto.Unmarshal(req, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		resp, err := m.timeToLiveHere(ctx, &r)
		if err != nil {
			return nil, err
		}
		return proto.Marshal(resp)
	case callPromote:
		if len(req) != 8 {
			return nil, fmt.Errorf("%s: want an 8-byte member ID", method)
		}
		_, err := m.promoteHere(ctx, binary.BigEndian.Uint64(req))
		return nil, err
	}
	return nil, fmt.Errorf("unknown call %q (a member of a newer version?)", method)
}

// callLeader runs method at the leader — here when this member leads —
// trying again while there is no leader or it changes, until ctx or the
// request timeout ends.
func (m *Member) callLeader(ctx context.Context, method string, req []byte) ([]byte, error) {
	tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	for {
		var (
			resp []byte
			err  error
			// retry: no leader, another member leads now, or the leader
			// could not be reached (it may be changing). An answer from
			// the leader, error or not, is final.
			retry bool
		)
		switch lead := m.lead.Load(); lead {
		case 0:
			err, retry = v3rpc.ErrNoLeader, true
		case m.id:
			resp, err = m.answerCall(tctx, method, req)
			retry = errors.Is(err, v3rpc.ErrNotLeader)
		default:
			resp, err = m.transport.Call(tctx, lead, method, req)
			var ce *transport.CallError
			if errors.As(err, &ce) {
				err = callError(ce.Message)
				retry = errors.Is(err, v3rpc.ErrNotLeader) || errors.Is(err, v3rpc.ErrNoLeader)
			} else {
				retry = err != nil
			}
		}
		if !retry {
			return resp, err
		}
		select {
		case <-time.After(callRetry):
		case <-tctx.Done():
			return nil, m.contextError(ctx, tctx, err)
		case <-m.ctx.Done():
			return nil, v3rpc.ErrStopped
		}
	}
}

// callError restores an error a call carried back as text: one of
// callErrors when the text is theirs.
func callError(msg string) error {
	for _, known := range callErrors {
		if msg == known.Error() {
			return known
		}
	}
	return errors.New(msg)
}

// LeaseRenew renews lease id at the leader and returns its TTL; 0 for a
// lease the leader does not know (etcd's answer to a keep-alive).
func (m *Member) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	resp, err := m.callLeader(ctx, callLeaseRenew, binary.BigEndian.AppendUint64(nil, uint64(id)))
	if errors.Is(err, store.ErrLeaseNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(resp) != 8 {
		return 0, fmt.Errorf("lease renew: the leader answered %d bytes, want 8", len(resp))
	}
	return int64(binary.BigEndian.Uint64(resp)), nil
}

// LeaseTimeToLive asks the leader how long lease r.ID has left.
func (m *Member) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	req, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode lease TTL request: %w", err)
	}
	b, err := m.callLeader(ctx, callLeaseTTL, req)
	if err != nil {
		return nil, err
	}
	resp := &pb.LeaseTimeToLiveResponse{}
	if err := proto.Unmarshal(b, resp); err != nil {
		return nil, fmt.Errorf("decode the leader's lease TTL answer: %w", err)
	}
	return resp, nil
}

// renewHere renews a lease on this member, the leader, once it has applied
// every grant committed before.
func (m *Member) renewHere(ctx context.Context, id int64) (int64, error) {
	if err := m.LinearizableRead(ctx); err != nil {
		return 0, err
	}
	return m.store.Renew(id)
}

// timeToLiveHere answers a TTL query on this member, the leader.
func (m *Member) timeToLiveHere(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := m.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: &pb.ResponseHeader{}, ID: r.ID, TTL: -1}
	l, ok := m.store.Lease(r.ID)
	if !ok {
		return resp, nil
	}
	ttl, err := m.store.Remaining(r.ID)
	switch {
	case errors.Is(err, store.ErrLeaseNotFound):
	case err != nil:
		return nil, err
	default:
		resp.TTL, resp.GrantedTTL = ttl, l.TTL
		if r.Keys {
			resp.Keys = l.Keys
		}
	}
	return resp, nil
}

// IsLearner reports whether this member is a learner.
func (m *Member) IsLearner() bool {
	mi, ok := m.member(m.id)
	return ok && mi.IsLearner
}
