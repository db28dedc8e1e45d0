package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A compaction has two halves, as in etcd. Applying it (applyCompaction)
// is logical and quick: the index forgets the old revisions, reads below
// the compaction revision fail from then on, and the backend records the
// revision as scheduled. The physical half runs beside Apply
// (runCompactor): it deletes the old revisions from the key bucket in
// batches, each under the store's lock for a moment, so a compaction of
// millions of revisions never stalls the writes behind it, then records the
// revision as finished. A store opened or restored with a scheduled but
// unfinished compaction finishes it. Nothing a client reads depends on how
// far the physical half got; Hash and HashKV wait for it, so that members
// compare equal whatever their progress.

// compactBatch is how many revisions one step deletes, compactPause how long
// the compactor lets Apply have the store between steps (etcd's
// CompactionBatchLimit and CompactionSleepInterval).
const (
	compactBatch = 1000
	compactPause = 10 * time.Millisecond
)

// compactJob is the physical half of the newest scheduled compaction.
type compactJob struct {
	rev  int64
	keep map[revision]struct{} // revisions at or below rev still in use
	next []byte                // the key bucket key to look at next (nil: the first)
}

// schedulePhysical hands the compaction at rev, which keeps keep, to the
// compactor; it replaces an unfinished one (whose revisions the new one
// drops too). Called with mu held.
func (s *Store) schedulePhysical(rev int64, keep map[revision]struct{}) {
	if s.compactJob == nil {
		s.compactDone = make(chan struct{})
	}
	s.compactJob = &compactJob{rev: rev, keep: keep}
	select {
	case s.compactKick <- struct{}{}:
	default:
	}
}

// runCompactor runs the physical halves of compactions until the store
// closes.
func (s *Store) runCompactor() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.compactKick:
		}
		for !s.compactStep() {
			select {
			case <-s.stop:
				return
			case <-time.After(compactPause):
			}
		}
	}
}

// compactStep deletes the next batch of the job's revisions and reports
// whether nothing is left to do.
func (s *Store) compactStep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.compactJob
	if j == nil {
		return true
	}
	if s.closed || s.fatal != nil {
		return true // a reopened store finishes the job
	}
	drop, end := j.nextBatch(s.be.keyB.Cursor())
	for _, k := range drop {
		if err := s.be.keyB.Delete(k); err != nil {
			s.fatal = fmt.Errorf("compact revision %d: %w", j.rev, err)
			s.lg.Error("store backend failed", "err", s.fatal)
			return true
		}
	}
	s.be.pending += len(drop)
	if !end {
		return false
	}
	if err := s.be.putMeta(metaFinishedCompact, revKey(revision{main: j.rev}, false)); err != nil {
		s.fatal = err
		s.lg.Error("store backend failed", "err", err)
		return true
	}
	s.be.pending++
	s.compactJob = nil
	close(s.compactDone)
	return true
}

// nextBatch returns the revisions of the job's next step that the
// compaction drops, and whether the step reaches the job's end; it moves
// j.next past the step. A step looks at compactBatch revisions, kept or
// not, as etcd's does: counting only the dropped ones, a step over a long
// run of kept revisions (the newest of every key, say) would hold the
// store's lock for all of them.
func (j *compactJob) nextBatch(c *bolt.Cursor) (drop [][]byte, end bool) {
	k, _ := c.First()
	if j.next != nil {
		k, _ = c.Seek(j.next)
	}
	for seen := 0; ; k, _ = c.Next() {
		if k == nil {
			return drop, true
		}
		r, _ := parseRevKey(k)
		if r.main > j.rev {
			return drop, true
		}
		if seen == compactBatch {
			j.next = bytes.Clone(k)
			return drop, false
		}
		seen++
		if _, ok := j.keep[r]; !ok {
			drop = append(drop, bytes.Clone(k))
		}
	}
}

// WaitCompaction returns once the physical half of every compaction
// applied so far has finished (etcd's physical compaction), or ctx ends.
func (s *Store) WaitCompaction(ctx context.Context) error {
	for {
		s.mu.RLock()
		j, done := s.compactJob, s.compactDone
		closed := s.closed
		s.mu.RUnlock()
		if j == nil {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-done:
		case <-s.stop:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lockCompacted takes mu once no compaction is left half done.
func (s *Store) lockCompacted() {
	for {
		s.mu.Lock()
		if s.compactJob == nil || s.closed || s.fatal != nil {
			return
		}
		done := s.compactDone
		s.mu.Unlock()
		select {
		case <-done:
		case <-s.stop:
		}
	}
}
