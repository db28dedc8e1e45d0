package store

import (
	"bytes"
	"fmt"
	"hash/crc32"
)

// metaTerm and metaStorageVersion are etcd's meta keys for the raft term and
// the schema version; tend writes neither, but a restored etcd snapshot may
// hold them.
var (
	metaTerm           = []byte("term")
	metaStorageVersion = []byte("storageVersion")
)

// Hash is a CRC-32C of every bucket's name and every key and value in it,
// as etcd's Maintenance.Hash computes it, with the revision it was taken at.
// The meta bucket's applied index, term and storage version are left out,
// as etcd leaves them out: they move without any request from a user, so
// members holding the same data agree.
func (s *Store) Hash() (uint32, int64, error) {
	s.lockCompacted()
	defer s.mu.Unlock()
	if s.closed {
		return 0, 0, ErrClosed
	}
	if s.fatal != nil {
		return 0, 0, s.fatal
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	c := s.be.tx.Cursor()
	for name, _ := c.First(); name != nil; name, _ = c.Next() {
		b := s.be.tx.Bucket(name)
		if b == nil {
			return 0, 0, fmt.Errorf("hash backend: %q is not a bucket", name)
		}
		h.Write(name)
		meta := bytes.Equal(name, metaBucket)
		err := b.ForEach(func(k, v []byte) error {
			if meta && (bytes.Equal(k, metaAppliedIndex) || bytes.Equal(k, metaTerm) || bytes.Equal(k, metaStorageVersion)) {
				return nil
			}
			h.Write(k)
			h.Write(v)
			return nil
		})
		if err != nil {
			return 0, 0, fmt.Errorf("hash bucket %s: %w", name, err)
		}
	}
	return h.Sum32(), s.rev, nil
}
