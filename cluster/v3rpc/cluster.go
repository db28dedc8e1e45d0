package v3rpc

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	b Backend
}

// header is etcd's for the Cluster service: the member's IDs and term, and
// no revision, since membership is not part of the keyspace.
func (s *clusterServer) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: s.b.ClusterID(), MemberId: s.b.MemberID(), RaftTerm: s.b.Term()}
}

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		if err := s.b.LinearizableRead(ctx); err != nil {
			return nil, toGRPCError(err)
		}
	}
	resp := &pb.MemberListResponse{Header: s.header(), Members: s.b.Members()}
	return resp, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	added, members, err := s.b.AddMember(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberAddResponse{Header: s.header(), Member: added, Members: members}
	return resp, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	members, err := s.b.RemoveMember(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberRemoveResponse{Header: s.header(), Members: members}
	return resp, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	members, err := s.b.UpdateMember(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberUpdateResponse{Header: s.header(), Members: members}
	return resp, nil
}

// MemberPromote runs on the leader, which alone knows whether the learner
// has caught up; other members ask it.
func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	members, err := s.b.PromoteMember(ctx, r.ID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.MemberPromoteResponse{Header: s.header(), Members: members}
	return resp, nil
}
