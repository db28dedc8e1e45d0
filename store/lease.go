package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxLeaseTTL is the largest TTL a lease may be granted with (etcd's).
const MaxLeaseTTL = 9000000000

// leaseState is a granted lease. id, ttl and keys are applied state (under
// Store.mu); expiry is bookkeeping of the leader (under Store.lmu), zero when
// the lease never expires (not promoted).
type leaseState struct {
	id, ttl int64
	keys    map[string][]byte
	expiry  time.Time
}

// Lease is a granted lease as the store records it.
type Lease struct {
	ID   int64
	TTL  int64 // granted TTL in seconds
	Keys [][]byte
}

func leaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// encodeLease writes the lease as etcd's leasepb.Lease (ID=1, TTL=2).
func encodeLease(l *leaseState) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.id))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(l.ttl))
	return b
}

func decodeLease(b []byte) (*leaseState, error) {
	l := &leaseState{keys: make(map[string][]byte)}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			l.id = int64(v)
		case 2:
			l.ttl = int64(v)
		}
	}
	return l, nil
}

func (s *Store) loadLeases() error {
	s.leases = make(map[int64]*leaseState)
	err := s.be.tx.Bucket(leaseBucket).ForEach(func(k, v []byte) error {
		l, err := decodeLease(v)
		if err != nil {
			return fmt.Errorf("decode lease %x: %w", k, err)
		}
		s.leases[l.id] = l
		return nil
	})
	if err != nil {
		return fmt.Errorf("load leases: %w", err)
	}
	s.lmu.Lock()
	s.primary = false
	s.lmu.Unlock()
	return nil
}

func (s *Store) attach(id int64, key []byte) {
	s.keyLease[string(key)] = id
	if l, ok := s.leases[id]; ok {
		l.keys[string(key)] = key
	}
}

func (s *Store) detach(id int64, key []byte) {
	delete(s.keyLease, string(key))
	if l, ok := s.leases[id]; ok {
		delete(l.keys, string(key))
	}
}

// leaseIDFor derives a lease ID from a log index (a grant with ID 0): the
// same on every member, positive, and unused.
func (s *Store) leaseIDFor(index uint64) int64 {
	x := index + 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	id := int64(x >> 1)
	for i := 0; i < 1000 && (id == 0 || s.leases[id] != nil); i++ {
		id++
	}
	return id
}

func (s *Store) applyLeaseGrant(index uint64, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	id := r.ID
	if id == 0 {
		id = s.leaseIDFor(index)
	}
	if r.TTL > MaxLeaseTTL {
		return nil, ErrLeaseTTLTooLarge
	}
	if _, ok := s.leases[id]; ok {
		return nil, ErrLeaseExists
	}
	l := &leaseState{id: id, ttl: max(r.TTL, s.opts.MinLeaseTTL), keys: make(map[string][]byte)}
	if err := s.be.tx.Bucket(leaseBucket).Put(leaseKey(id), encodeLease(l)); err != nil {
		return nil, fmt.Errorf("persist lease %d: %w", id, err)
	}
	s.leases[id] = l
	s.lmu.Lock()
	if s.primary {
		l.expiry = s.opts.Now().Add(time.Duration(l.ttl) * time.Second)
	}
	s.lmu.Unlock()
	return &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{Revision: s.rev}, ID: id, TTL: l.ttl}, nil
}

// applyLeaseRevoke deletes the lease's keys, in key order, as one revision.
func (s *Store) applyLeaseRevoke(r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	l, ok := s.leases[r.ID]
	if !ok {
		return nil, ErrLeaseNotFound
	}
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := s.beginWrite()
	for _, k := range keys {
		t.deleteRange([]byte(k), nil)
	}
	if err := s.be.tx.Bucket(leaseBucket).Delete(leaseKey(r.ID)); err != nil {
		return nil, fmt.Errorf("delete lease %d: %w", r.ID, err)
	}
	delete(s.leases, r.ID)
	if err := t.end(); err != nil {
		return nil, err
	}
	return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: s.rev}}, nil
}

func (l *leaseState) export() Lease {
	out := Lease{ID: l.id, TTL: l.ttl, Keys: make([][]byte, 0, len(l.keys))}
	for _, k := range l.keys {
		out.Keys = append(out.Keys, bytes.Clone(k))
	}
	slices.SortFunc(out.Keys, func(a, b []byte) int { return compareBytes(a, b) })
	return out
}

// Lease returns one lease; Leases all of them, by ID.
func (s *Store) Lease(id int64) (Lease, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.leases[id]
	if !ok {
		return Lease{}, false
	}
	return l.export(), true
}

func (s *Store) Leases() []Lease {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l.export())
	}
	slices.SortFunc(out, func(a, b Lease) int { return compareInt(a.ID, b.ID) })
	return out
}

// Lease expiry bookkeeping (in memory, on the leader): Promote starts every
// lease's TTL afresh plus extend (a new leader), Demote stops expiry (a
// follower), Renew handles a keep-alive, Remaining answers TimeToLive,
// Expired lists leases whose time is up (the cluster proposes their
// revocation). Leases granted while promoted start their TTL at the grant;
// while demoted they never expire.
func (s *Store) Promote(extend time.Duration) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.primary = true
	now := s.opts.Now()
	for _, l := range s.leases {
		l.expiry = now.Add(time.Duration(l.ttl)*time.Second + extend)
	}
}

func (s *Store) Demote() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.primary = false
	for _, l := range s.leases {
		l.expiry = time.Time{}
	}
}

// Renew refreshes a lease's expiry to a full TTL and returns the TTL. It
// fails with ErrNotPrimary when not promoted and ErrLeaseNotFound when the
// lease is gone or already expired (its revocation is on the way).
func (s *Store) Renew(id int64) (ttl int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if !s.primary {
		return -1, ErrNotPrimary
	}
	l, ok := s.leases[id]
	if !ok {
		return -1, ErrLeaseNotFound
	}
	now := s.opts.Now()
	if !l.expiry.IsZero() && !now.Before(l.expiry) {
		return -1, ErrLeaseNotFound
	}
	l.expiry = now.Add(time.Duration(l.ttl) * time.Second)
	return l.ttl, nil
}

// Remaining is the lease's time to live in whole seconds; when not promoted
// (no expiry running) it is the granted TTL.
func (s *Store) Remaining(id int64) (ttl int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return -1, ErrLeaseNotFound
	}
	if l.expiry.IsZero() {
		return l.ttl, nil
	}
	left := l.expiry.Sub(s.opts.Now())
	if left < 0 {
		return 0, nil
	}
	return int64(left / time.Second), nil
}

// Expired lists, in ID order, the leases past their expiry.
func (s *Store) Expired() []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if !s.primary {
		return nil
	}
	now := s.opts.Now()
	var ids []int64
	for id, l := range s.leases {
		if !l.expiry.IsZero() && !now.Before(l.expiry) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
