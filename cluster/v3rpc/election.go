package v3rpc

import (
	"context"
	"errors"

	"go.etcd.io/etcd/client/v3/concurrency"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
)

// errMissingLeaderKey is etcd's answer to a Proclaim or Resign without the
// leader key Campaign returned.
var errMissingLeaderKey = errors.New(`"leader" field must be provided`)

// electionServer is etcd's Election service: candidates are keys under
// "<name>/" on their leases, the oldest leads, as etcd's v3election serves
// it.
type electionServer struct {
	epb.UnimplementedElectionServer
	l *local
}

func (s *electionServer) Campaign(ctx context.Context, r *epb.CampaignRequest) (*epb.CampaignResponse, error) {
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, r.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.NewElection(sess, string(r.Name))
	if err := e.Campaign(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &epb.CampaignResponse{
		Header: e.Header(),
		Leader: &epb.LeaderKey{Name: r.Name, Key: []byte(e.Key()), Rev: e.Rev(), Lease: int64(sess.Lease())},
	}, nil
}

func (s *electionServer) Proclaim(ctx context.Context, r *epb.ProclaimRequest) (*epb.ProclaimResponse, error) {
	if r.Leader == nil {
		return nil, errMissingLeaderKey
	}
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, r.Leader.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.ResumeElection(sess, string(r.Leader.Name), string(r.Leader.Key), r.Leader.Rev)
	if err := e.Proclaim(ctx, string(r.Value)); err != nil {
		return nil, err
	}
	return &epb.ProclaimResponse{Header: e.Header()}, nil
}

func (s *electionServer) Resign(ctx context.Context, r *epb.ResignRequest) (*epb.ResignResponse, error) {
	if r.Leader == nil {
		return nil, errMissingLeaderKey
	}
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, r.Leader.Lease)
	if err != nil {
		return nil, err
	}
	e := concurrency.ResumeElection(sess, string(r.Leader.Name), string(r.Leader.Key), r.Leader.Rev)
	if err := e.Resign(ctx); err != nil {
		return nil, err
	}
	return &epb.ResignResponse{Header: e.Header()}, nil
}

func (s *electionServer) Leader(ctx context.Context, r *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, -1)
	if err != nil {
		return nil, err
	}
	l, err := concurrency.NewElection(sess, string(r.Name)).Leader(ctx)
	if err != nil {
		return nil, err
	}
	return &epb.LeaderResponse{Header: l.Header, Kv: l.Kvs[0]}, nil
}

// Observe streams the leader's key each time leadership or the leader's
// value changes, until the caller goes away.
func (s *electionServer) Observe(r *epb.LeaderRequest, stream epb.Election_ObserveServer) error {
	ctx := stream.Context()
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, -1)
	if err != nil {
		return err
	}
	ch := concurrency.NewElection(sess, string(r.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return ctx.Err()
			}
			if err := stream.Send(&epb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}
