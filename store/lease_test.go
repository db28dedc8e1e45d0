package store

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLeaseExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := testStore(t, Options{Now: clock.Now, MinLeaseTTL: 5})
	a := &applier{t: t, s: s}
	grant := func(id, ttl int64) {
		a.apply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: ttl}})
	}

	// Demoted (a follower): leases never expire, keep-alives go elsewhere.
	grant(1, 10)
	clock.advance(time.Hour)
	if got := s.Expired(); got != nil {
		t.Fatalf("expired while demoted: %v", got)
	}
	if _, err := s.Renew(1); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("renew while demoted: %v", err)
	}
	if ttl, err := s.Remaining(1); err != nil || ttl != 10 {
		t.Fatalf("remaining while demoted: %d %v", ttl, err)
	}

	// Promoted: every lease gets a full TTL plus the extension.
	s.Promote(2 * time.Second)
	grant(2, 1) // raised to MinLeaseTTL 5, starting now
	if ttl, _ := s.Remaining(1); ttl != 12 {
		t.Fatalf("remaining after promote: %d, want 12", ttl)
	}
	clock.advance(5 * time.Second)
	if got := s.Expired(); !slices.Equal(got, []int64{2}) {
		t.Fatalf("expired after 5s: %v, want [2]", got)
	}
	if _, err := s.Renew(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("renew of an expired lease: %v", err)
	}
	clock.advance(4 * time.Second)
	if ttl, err := s.Renew(1); err != nil || ttl != 10 {
		t.Fatalf("renew: %d %v", ttl, err)
	}
	clock.advance(9 * time.Second)
	if got := s.Expired(); !slices.Equal(got, []int64{2}) {
		t.Fatalf("expired after renew: %v, want [2]", got)
	}
	clock.advance(time.Second)
	if got := s.Expired(); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("expired: %v, want [1 2]", got)
	}
	a.apply(&pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 2}})
	if got := s.Expired(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("expired after revoke: %v", got)
	}
	if _, err := s.Remaining(2); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("remaining of a revoked lease: %v", err)
	}

	// Demoted again: nothing expires; a restart forgets expiry entirely.
	s.Demote()
	if got := s.Expired(); got != nil {
		t.Fatalf("expired after demote: %v", got)
	}
	grant(3, 30)
	s.Promote(0)
	clock.advance(29 * time.Second)
	if got := s.Expired(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("expired: %v, want [1]", got)
	}
	if ttl, _ := s.Remaining(3); ttl != 1 {
		t.Fatalf("remaining: %d, want 1", ttl)
	}
}

func TestLeaseDerivedID(t *testing.T) {
	run := func() []int64 {
		s := testStore(t, Options{})
		a := &applier{t: t, s: s}
		var ids []int64
		for range 3 {
			res := a.apply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{TTL: 10}})
			ids = append(ids, res.Resp.(*pb.LeaseGrantResponse).ID)
		}
		return ids
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatalf("derived lease IDs differ between members: %v vs %v", a, b)
	}
	for _, id := range a {
		if id <= 0 {
			t.Fatalf("derived lease ID %d not positive", id)
		}
	}
	if a[0] == a[1] || a[1] == a[2] {
		t.Fatalf("derived lease IDs repeat: %v", a)
	}
}
