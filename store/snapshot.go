package store

import (
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// Size is the backend file size; SizeInUse the part holding data.
func (s *Store) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.be.tx == nil {
		return 0
	}
	return s.be.tx.Size()
}

func (s *Store) SizeInUse() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.be.tx == nil {
		return 0
	}
	st := s.be.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.be.db.Info().PageSize)
	return s.be.tx.Size() - free
}

// Snapshot writes a consistent copy of the backend (a bbolt file), including
// every applied request: it commits the open batch first.
func (s *Store) Snapshot(w io.Writer) (int64, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if s.fatal != nil {
		s.mu.Unlock()
		return 0, s.fatal
	}
	if err := s.commitLocked(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	rtx, err := s.be.db.Begin(false)
	s.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("begin snapshot: %w", err)
	}
	defer rtx.Rollback()
	n, err := rtx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("write snapshot: %w", err)
	}
	return n, nil
}

// Restore replaces the whole state with a snapshot written by Snapshot (or
// by etcd): index, revisions, leases, alarms and the applied index come from
// it. Watches carry on from their next revision.
func (s *Store) Restore(r io.Reader) error {
	tmp := s.path + ".restore"
	if err := writeFile(tmp, r); err != nil {
		return err
	}
	defer os.Remove(tmp)
	// Check it is a bbolt file before touching the live one.
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("restore snapshot: open %s: %w", tmp, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(keyBucket) == nil {
			return fmt.Errorf("no %q bucket", keyBucket)
		}
		return nil
	})
	db.Close()
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	// The open batch is dropped: the snapshot replaces all of it.
	if err := s.be.close(-1); err != nil {
		s.fatal = err
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		s.fatal = fmt.Errorf("restore snapshot: %w", err)
		return s.fatal
	}
	if err := s.reopenLocked(); err != nil {
		return err
	}
	if err := s.load(); err != nil {
		s.fatal = fmt.Errorf("restore snapshot: %w", err)
		return s.fatal
	}
	s.fatal = nil
	s.hub.unsyncAll(s.rev)
	return nil
}

func (s *Store) reopenLocked() error {
	be, err := openBackend(s.path, s.opts.noSync)
	if err != nil {
		s.fatal = err
		return err
	}
	s.be = be
	return nil
}

// Defragment rewrites the backend file compactly. Reads and writes wait for
// it and then go on.
func (s *Store) Defragment() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.fatal != nil {
		return s.fatal
	}
	if err := s.be.tx.Commit(); err != nil {
		s.fatal = fmt.Errorf("defragment: commit: %w", err)
		return s.fatal
	}
	s.be.tx = nil
	tmp := s.path + ".defrag"
	os.Remove(tmp)
	// No fsync per batch: the copy is fsynced once, before it replaces
	// the file; a crash before that leaves the old file in place.
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
		InitialMmapSize: defragMmapSize(s.path)})
	if err == nil {
		err = copyDB(dst, s.be.db)
		if err == nil {
			err = dst.Sync()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(tmp)
		if berr := s.be.begin(); berr != nil {
			s.fatal = berr
		}
		return fmt.Errorf("defragment %s: %w", s.path, err)
	}
	if err := s.be.close(-1); err != nil {
		s.fatal = fmt.Errorf("defragment: %w", err)
		return s.fatal
	}
	if err := os.Rename(tmp, s.path); err != nil {
		s.fatal = fmt.Errorf("defragment: %w", err)
		return s.fatal
	}
	committed := s.rev
	if err := s.reopenLocked(); err != nil {
		return err
	}
	s.be.committedRev = committed
	s.durable.Store(s.applied.Load())
	return nil
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("restore snapshot: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("restore snapshot: sync %s: %w", path, err)
	}
	return f.Close()
}

// defragBatch is how many keys one write transaction of a defragment copies,
// as etcd's defragLimit.
const defragBatch = 10000

// copyDB copies every bucket of src into the empty dst, keys in order, in
// transactions of defragBatch keys, pages filled to 90% (etcd's choice:
// appends fill pages, the slack leaves room for later updates).
func copyDB(dst, src *bolt.DB) error {
	return src.View(func(stx *bolt.Tx) error {
		tx, err := dst.Begin(true)
		if err != nil {
			return err
		}
		defer func() {
			if tx != nil {
				tx.Rollback()
			}
		}()
		n := 0
		err = stx.ForEach(func(name []byte, sb *bolt.Bucket) error {
			db, err := tx.CreateBucket(name)
			if err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
			db.FillPercent = 0.9
			if err := db.SetSequence(sb.Sequence()); err != nil {
				return err
			}
			c := sb.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					return fmt.Errorf("bucket %s: nested bucket %q: not expected in a store file", name, k)
				}
				if err := db.Put(k, v); err != nil {
					return fmt.Errorf("bucket %s: put: %w", name, err)
				}
				if n++; n%defragBatch == 0 {
					if err := tx.Commit(); err != nil {
						return err
					}
					if tx, err = dst.Begin(true); err != nil {
						return err
					}
					db = tx.Bucket(name)
					db.FillPercent = 0.9
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Commit()
		tx = nil
		return err
	})
}

// defragMmapSize maps the copy as large as the file it replaces (it is
// smaller) from the start, so that it is never remapped while it grows.
func defragMmapSize(path string) int {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(min(fi.Size(), 8<<30))
}
