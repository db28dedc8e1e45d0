package v3rpc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/version"

	"github.com/tendkv/tend/store"
)

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	b    Backend
	hdr  header
	opts Options
}

func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action == pb.AlarmRequest_GET {
		if err := s.b.LinearizableRead(ctx); err != nil {
			return nil, toGRPCError(err)
		}
		resp := &pb.AlarmResponse{Header: &pb.ResponseHeader{}, Alarms: alarmsMatching(s.b.Store().Alarms(), r)}
		s.hdr.fill(resp.Header)
		return resp, nil
	}
	resp, err := propose[*pb.AlarmResponse](ctx, s.b, &pb.InternalRaftRequest{Alarm: r})
	if err != nil {
		return nil, err
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

// alarmsMatching filters as etcd's GET does: member 0 and alarm NONE match
// everything.
func alarmsMatching(all []*pb.AlarmMember, r *pb.AlarmRequest) []*pb.AlarmMember {
	out := []*pb.AlarmMember{}
	for _, a := range all {
		if (r.MemberID == 0 || a.MemberID == r.MemberID) && (r.Alarm == pb.AlarmType_NONE || a.Alarm == r.Alarm) {
			out = append(out, a)
		}
	}
	return out
}

func (s *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := s.b.Store()
	resp := &pb.StatusResponse{
		Header:           &pb.ResponseHeader{},
		Version:          version.Version,
		StorageVersion:   storageVersion,
		DbSize:           st.Size(),
		DbSizeInUse:      st.SizeInUse(),
		Leader:           s.b.Leader(),
		RaftIndex:        s.b.CommittedIndex(),
		RaftTerm:         s.b.Term(),
		RaftAppliedIndex: s.b.AppliedIndex(),
		DbSizeQuota:      s.opts.QuotaBackendBytes,
		DowngradeInfo:    &pb.DowngradeInfo{},
		IsLearner:        s.b.IsLearner(),
	}
	if resp.Leader == 0 {
		resp.Errors = append(resp.Errors, ErrNoLeader.Error())
	}
	for _, a := range st.Alarms() {
		resp.Errors = append(resp.Errors, a.String())
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	if err := s.b.Store().Defragment(); err != nil {
		return nil, toGRPCError(err)
	}
	// Etcd's answer carries no header.
	return &pb.DefragmentResponse{}, nil
}

// Hash answers with a hash of the whole backend, for tests that compare
// members.
func (s *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev, err := s.b.Store().Hash()
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.HashResponse{Header: s.hdr.new(rev), Hash: h}
	return resp, nil
}

func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, err := s.b.Store().HashKV(r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp := &pb.HashKVResponse{
		Header: &pb.ResponseHeader{}, Hash: h,
		CompactRevision: compactRev, HashRevision: hashRev,
	}
	s.hdr.fill(resp.Header)
	return resp, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.b.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPCError(err)
	}
	// Etcd's answer carries no header.
	return &pb.MoveLeaderResponse{}, nil
}

// snapshotChunk is how much of the backend one response carries.
const snapshotChunk = 32 * 1024

// Snapshot streams a consistent copy of the backend followed by its sha256,
// the form `etcdctl snapshot save` and etcdutl verify: chunks count
// RemainingBytes down to 0, then one last message carries the digest.
func (s *maintenanceServer) Snapshot(r *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	f, err := os.CreateTemp("", "tend-snapshot-*.db")
	if err != nil {
		return toGRPCError(fmt.Errorf("create snapshot file: %w", err))
	}
	defer os.Remove(f.Name())
	defer f.Close()
	total, err := s.b.Store().Snapshot(f)
	if err != nil {
		return toGRPCError(fmt.Errorf("write snapshot: %w", err))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return toGRPCError(fmt.Errorf("rewind snapshot: %w", err))
	}
	h := sha256.New()
	buf := make([]byte, snapshotChunk)
	for sent := int64(0); sent < total; {
		n, err := io.ReadFull(f, buf[:min(int64(len(buf)), total-sent)])
		if err != nil {
			return toGRPCError(fmt.Errorf("read snapshot: %w", err))
		}
		sent += int64(n)
		h.Write(buf[:n])
		if err := stream.Send(&pb.SnapshotResponse{RemainingBytes: uint64(total - sent), Blob: buf[:n], Version: storageVersion}); err != nil {
			return err
		}
	}
	return stream.Send(&pb.SnapshotResponse{Blob: h.Sum(nil), Version: storageVersion})
}

// storageVersion is the backend schema the store keeps, reported in Status
// and Snapshot as etcd reports its own.
const storageVersion = store.StorageVersion
