package v3rpc

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type leaseServer struct {
	pb.UnimplementedLeaseServer
	b    Backend
	hdr  header
	opts Options
}

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := checkQuota(ctx, s.b, s.opts, leaseOverhead); err != nil {
		return nil, err
	}
	// The ID is chosen before proposing, so every member applies the same.
	for r.ID == 0 {
		r.ID = s.b.NewLeaseID()
	}
	resp, err := propose[*pb.LeaseGrantResponse](ctx, s.b, &pb.InternalRaftRequest{LeaseGrant: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := propose[*pb.LeaseRevokeResponse](ctx, s.b, &pb.InternalRaftRequest{LeaseRevoke: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// Only the leader keeps lease time: a follower forwards TTL queries and
// keep-alives to it.

func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.b.LeaseTimeToLive(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	if resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := s.b.LinearizableRead(ctx); err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{}, Leases: []*pb.LeaseStatus{}}
	for _, l := range s.b.Store().Leases() {
		resp.Leases = append(resp.Leases, &pb.LeaseStatus{ID: l.ID})
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews leases for as long as the client sends; an unknown
// lease gets TTL 0, as etcd answers.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := s.b.LeaseRenew(stream.Context(), req.ID)
		if err != nil {
			return toGRPCError(err)
		}
		resp := &pb.LeaseKeepAliveResponse{Header: &pb.ResponseHeader{}, ID: req.ID, TTL: ttl}
		s.hdr.fill(resp.Header)
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
