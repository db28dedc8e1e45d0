package v3rpc

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

// lockServer is etcd's Lock service: a named mutex whose holder is the
// oldest key under "<name>/", bound to the caller's lease (a new 60s one
// when the request names none), as etcd's v3lock serves it.
type lockServer struct {
	v3lockpb.UnimplementedLockServer
	l *local
}

func (s *lockServer) Lock(ctx context.Context, r *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	c := s.l.client(ctx)
	defer c.Close()
	sess, err := orphanSession(ctx, c, r.Lease)
	if err != nil {
		return nil, err
	}
	m := concurrency.NewMutex(sess, string(r.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

func (s *lockServer) Unlock(ctx context.Context, r *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	c := s.l.client(ctx)
	defer c.Close()
	resp, err := c.Delete(ctx, string(r.Key))
	if err != nil {
		return nil, err
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

// orphanSession is a concurrency session on lease (a new one with the
// default TTL when 0) that keeps nothing alive: the caller owns the lease.
func orphanSession(ctx context.Context, c *clientv3.Client, lease int64) (*concurrency.Session, error) {
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}
