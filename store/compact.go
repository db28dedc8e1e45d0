package store

import (
	"hash/crc32"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// applyCompaction removes history before rev from the index and schedules
// its removal from the backend (compactor.go).
func (s *Store) applyCompaction(r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if r.Revision <= s.compactRev {
		return nil, ErrCompacted
	}
	if r.Revision > s.rev {
		return nil, ErrFutureRev
	}
	keep := s.idx.compact(r.Revision)
	if err := s.be.putMeta(metaScheduledCompact, revKey(revision{main: r.Revision}, false)); err != nil {
		return nil, err
	}
	s.compactRev = r.Revision
	s.compactA.Store(r.Revision)
	s.schedulePhysical(r.Revision, keep)
	return &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.rev}}, nil
}

// HashKV hashes the keyspace up to rev (0: current), as etcd's HashKV does:
// crc32 (Castagnoli) over the key bucket's name and the entries after the
// compaction (plus the kept ones at or before it), up to rev. compactRev is
// -1 before the first compaction, as etcd reports it.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	s.lockCompacted()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, 0, ErrClosed
	}
	compactRev, cur := s.compactRev, s.rev
	if rev > 0 && rev < compactRev {
		return 0, 0, 0, ErrCompacted
	}
	if rev > 0 && rev > cur {
		return 0, 0, 0, ErrFutureRev
	}
	if rev == 0 {
		rev = cur
	}
	keep := s.idx.keep(rev)
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	h.Write(keyBucket)
	upper := revision{main: rev + 1}
	lower := revision{main: compactRev + 1}
	c := s.be.keyB.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		kr, tomb := parseRevKey(k)
		if !upper.greater(kr) {
			break
		}
		if lower.greater(kr) && len(keep) > 0 {
			if _, ok := keep[kr]; !ok {
				continue
			}
		}
		if kr.main == compactRev && tomb {
			continue
		}
		h.Write(k)
		h.Write(v)
	}
	return h.Sum32(), rev, compactRev, nil
}
