package store

import (
	"encoding/binary"
	"fmt"
)

// Advance records that the log entry at index was applied although it
// changes nothing in the store (a membership change), so AppliedIndex
// follows the log exactly and a snapshot of the store covers every entry up
// to it. Like Apply, an index at or below AppliedIndex is skipped; the
// error is fatal.
func (s *Store) Advance(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.fatal != nil {
		return s.fatal
	}
	if index <= s.applied.Load() {
		return nil
	}
	if err := s.be.putMeta(metaAppliedIndex, binary.BigEndian.AppendUint64(nil, index)); err != nil {
		s.fatal = fmt.Errorf("advance to entry %d: %w", index, err)
		return s.fatal
	}
	s.applied.Store(index)
	s.be.pending++
	if s.be.pending >= s.opts.BatchLimit {
		return s.commitLocked()
	}
	return nil
}
