package compat

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// memberRefs remembers, per server (by backend name, which a user's own
// client shares), the member IDs the cluster steps need: the server's own,
// learnt from a Status answer, and that of the learner a step added. Member
// IDs differ between servers, so steps name members by role and answers
// show roles instead of IDs.
type memberRefs struct {
	self, learner map[string]uint64
}

func newMemberRefs() *memberRefs {
	return &memberRefs{self: map[string]uint64{}, learner: map[string]uint64{}}
}

// memberRef names a member in a step.
type memberRef int

const (
	selfRef    memberRef = iota // the server itself
	learnerRef                  // the learner added by memberAdd
	unknownRef                  // a member no server has
)

func (r memberRef) String() string {
	return [...]string{"<self>", "<learner>", "<unknown>"}[r]
}

const unknownMemberID = 0x1234_5678

func (m *memberRefs) id(e *env, r memberRef) uint64 {
	switch r {
	case selfRef:
		return m.self[e.name]
	case learnerRef:
		return m.learner[e.name]
	}
	return unknownMemberID
}

// members puts each member's role in place of its ID, and clears what each
// server names differently (its own name and URLs); the learner keeps the
// peer URLs the steps gave it.
func (m *memberRefs) members(e *env, ms []*pb.Member) []*pb.Member {
	out := make([]*pb.Member, 0, len(ms))
	for _, mb := range ms {
		mb = proto.Clone(mb).(*pb.Member)
		switch mb.ID {
		case m.learner[e.name]:
			mb.ID = uint64(learnerRef)
		case m.self[e.name]:
			mb.ID, mb.Name, mb.PeerURLs, mb.ClientURLs = uint64(selfRef), "", nil, nil
		default:
			mb.ID, mb.Name, mb.PeerURLs, mb.ClientURLs = uint64(unknownRef), "", nil, nil
		}
		out = append(out, mb)
	}
	slices.SortFunc(out, func(a, b *pb.Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func clusterCall(desc string, f func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error)) step {
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		return f(ctx, pb.NewClusterClient(e.conn), e)
	}}
}

// status asks for the server's status and, when it answers, records the
// server's member ID. The answer keeps what both servers must agree on; the
// sizes and raft indexes are each server's own.
func maintStatus() step {
	return maintCall("Status", func(ctx context.Context, c pb.MaintenanceClient) (proto.Message, error) {
		resp, err := c.Status(ctx, &pb.StatusRequest{})
		if err != nil {
			return nil, err
		}
		return &pb.StatusResponse{Header: resp.Header, Version: resp.Version, IsLearner: resp.IsLearner, Errors: resp.Errors}, nil
	})
}

// learnSelf records each server's member ID from a Status answer, asked
// as a user who may: the cluster steps name the server by it.
func (m *memberRefs) learnSelf() step {
	return step{"Status (learn own member ID)", func(ctx context.Context, e *env) (proto.Message, error) {
		resp, err := e.maint.Status(ctx, &pb.StatusRequest{})
		if err != nil {
			return nil, err
		}
		if resp.Header.MemberId == 0 || resp.Leader != resp.Header.MemberId {
			return nil, fmt.Errorf("status: member %x, leader %x: want a one-member cluster that leads itself", resp.Header.MemberId, resp.Leader)
		}
		m.self[e.name] = resp.Header.MemberId
		return &pb.StatusResponse{}, nil
	}}
}

func (m *memberRefs) memberList(linearizable bool) step {
	return clusterCall(fmt.Sprintf("MemberList linearizable=%v", linearizable), func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error) {
		resp, err := c.MemberList(ctx, &pb.MemberListRequest{Linearizable: linearizable})
		if resp != nil {
			resp.Members = m.members(e, resp.Members)
		}
		return resp, err
	})
}

// memberAdd adds a member with peerURLs; a learner it adds becomes
// <learner> for later steps.
func (m *memberRefs) memberAdd(peerURLs []string, learner bool) step {
	r := &pb.MemberAddRequest{PeerURLs: peerURLs, IsLearner: learner}
	return clusterCall("MemberAdd "+txt(r), func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error) {
		resp, err := c.MemberAdd(ctx, r)
		if err != nil {
			return nil, err
		}
		if learner {
			m.learner[e.name] = resp.Member.ID
		}
		resp.Member = m.members(e, []*pb.Member{resp.Member})[0]
		resp.Members = m.members(e, resp.Members)
		return resp, nil
	})
}

func (m *memberRefs) memberRemove(r memberRef) step {
	return clusterCall(fmt.Sprintf("MemberRemove %v", r), func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error) {
		resp, err := c.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: m.id(e, r)})
		if resp != nil {
			resp.Members = m.members(e, resp.Members)
		}
		return resp, err
	})
}

func (m *memberRefs) memberUpdate(r memberRef, peerURLs []string) step {
	return clusterCall(fmt.Sprintf("MemberUpdate %v peer_urls=%q", r, peerURLs), func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error) {
		resp, err := c.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: m.id(e, r), PeerURLs: peerURLs})
		if resp != nil {
			resp.Members = m.members(e, resp.Members)
		}
		return resp, err
	})
}

func (m *memberRefs) memberPromote(r memberRef) step {
	return clusterCall(fmt.Sprintf("MemberPromote %v", r), func(ctx context.Context, c pb.ClusterClient, e *env) (proto.Message, error) {
		resp, err := c.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: m.id(e, r)})
		if resp != nil {
			resp.Members = m.members(e, resp.Members)
		}
		return resp, err
	})
}

func (m *memberRefs) moveLeader(r memberRef) step {
	return step{fmt.Sprintf("MoveLeader %v", r), func(ctx context.Context, e *env) (proto.Message, error) {
		return e.maint.MoveLeader(ctx, &pb.MoveLeaderRequest{TargetID: m.id(e, r)})
	}}
}

// hash asks for the hash of the whole backend, which each server lays out
// its own way: only whether it answers is compared.
func hash() step {
	return maintCall("Hash", func(ctx context.Context, c pb.MaintenanceClient) (proto.Message, error) {
		resp, err := c.Hash(ctx, &pb.HashRequest{})
		if resp != nil {
			resp.Hash = 0
		}
		return resp, err
	})
}

func defragment() step {
	return maintCall("Defragment", func(ctx context.Context, c pb.MaintenanceClient) (proto.Message, error) {
		return c.Defragment(ctx, &pb.DefragmentRequest{})
	})
}

func alarm(action pb.AlarmRequest_AlarmAction, a pb.AlarmType) step {
	r := &pb.AlarmRequest{Action: action, Alarm: a}
	return maintCall("Alarm "+txt(r), func(ctx context.Context, c pb.MaintenanceClient) (proto.Message, error) {
		return c.Alarm(ctx, r)
	})
}

// downgrade asks whether the cluster could downgrade to 3.6.
func downgrade() step {
	r := &pb.DowngradeRequest{Action: pb.DowngradeRequest_VALIDATE, Version: "3.6"}
	return maintCall("Downgrade "+txt(r), func(ctx context.Context, c pb.MaintenanceClient) (proto.Message, error) {
		return c.Downgrade(ctx, r)
	})
}

// withToken runs s with token in the call's metadata, over a connection of
// its own: clientv3's would retry the refusal for seconds.
func withToken(token string, s step) step {
	return step{fmt.Sprintf("with token %q: %s", token, s.desc), func(ctx context.Context, e *env) (proto.Message, error) {
		conn, err := grpc.NewClient(e.cli.Endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		raw := &env{backend: e.backend, conn: conn, kv: pb.NewKVClient(conn), lease: pb.NewLeaseClient(conn), maint: pb.NewMaintenanceClient(conn)}
		return s.do(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, token), raw)
	}}
}

// clusterAuthSteps runs every Cluster and Maintenance call without
// credentials, as a user without the root role, and as root, while auth is
// on. Etcd lets any user list members, ask for status and read alarms, and
// leaves member changes, leader moves, hashes, defragmentation, snapshots,
// alarm changes and downgrades to root; a call without credentials gets
// "user name is empty" for all of them.
func clusterAuthSteps(anyone, root *user) []step {
	m := newMemberRefs()
	// The member IDs are learnt first, as a user who may ask for them.
	steps := []step{anyone.as(m.learnSelf())}
	// A token the server never issued is refused before anything else,
	// but for a new member's bad URLs.
	for _, s := range []step{
		maintStatus(), m.memberList(false), m.memberAdd([]string{"not a URL"}, false),
		m.memberAdd([]string{"http://127.0.0.1:9"}, true), m.memberRemove(selfRef), m.moveLeader(selfRef),
		hash(), defragment(), snapshotFirst(), alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE),
	} {
		steps = append(steps, withToken("forged.1", s))
	}
	for _, u := range []*user{nil, anyone, root} {
		as := func(s step) step { return s }
		if u != nil {
			as = u.as
		}
		steps = append(steps,
			as(maintStatus()),
			as(m.memberList(false)),
			as(m.memberList(true)),
			// Nothing listens on the discard port: the learner never
			// catches up, so it can be neither promoted nor led.
			as(m.memberAdd([]string{"http://127.0.0.1:9"}, true)),
			as(m.memberAdd([]string{"not a URL"}, false)),
			as(m.memberAdd(nil, true)),
			as(m.memberUpdate(learnerRef, []string{"http://127.0.0.1:10"})),
			as(m.memberPromote(learnerRef)),
			as(m.memberPromote(selfRef)),
			as(m.memberPromote(unknownRef)),
			as(m.moveLeader(learnerRef)),
			as(m.moveLeader(unknownRef)),
			as(m.moveLeader(selfRef)),
			as(m.memberRemove(unknownRef)),
			as(m.memberRemove(learnerRef)),
			as(m.memberList(false)),
			as(hash()),
			as(defragment()),
			as(snapshotFirst()),
			as(alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE)),
			as(alarm(pb.AlarmRequest_ACTIVATE, pb.AlarmType_NOSPACE)),
			as(alarm(pb.AlarmRequest_GET, pb.AlarmType_NONE)),
			as(alarm(pb.AlarmRequest_DEACTIVATE, pb.AlarmType_NOSPACE)),
		)
		if u != root {
			// Only the refusal: tend has no downgrade.
			steps = append(steps, as(downgrade()))
		}
	}
	return steps
}
