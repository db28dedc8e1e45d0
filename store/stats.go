package store

import (
	"sync/atomic"
	"time"
)

// Stats are counts of the store's work since it was opened and of what it
// holds now, read for metrics (cluster exports them under etcd's names).
type Stats struct {
	// Puts, Deletes and Ranges count the operations applied or served,
	// those inside txns included (etcd_mvcc_put_total, _delete_total,
	// _range_total). Txns counts applied txns (etcd_mvcc_txn_total).
	Puts, Deletes, Ranges, Txns uint64
	// PutBytes is the size of the keys and values put
	// (etcd_debugging_mvcc_total_put_size_in_bytes).
	PutBytes uint64
	// Keys are the live keys (etcd_debugging_mvcc_keys_total), counted
	// as keys are put and deleted.
	Keys int
	// WatchStreams and Watchers are open now; SlowWatchers are those
	// behind the current revision, being caught up.
	WatchStreams, Watchers, SlowWatchers int
}

// counters are the Stats counted as the store works.
type counters struct {
	puts, deletes, ranges, txns, putBytes atomic.Uint64
}

// Stats returns the current counts.
func (s *Store) Stats() Stats {
	st := Stats{
		Puts:     s.counts.puts.Load(),
		Deletes:  s.counts.deletes.Load(),
		Ranges:   s.counts.ranges.Load(),
		Txns:     s.counts.txns.Load(),
		PutBytes: s.counts.putBytes.Load(),
	}
	s.mu.RLock()
	st.Keys = s.idx.live
	s.mu.RUnlock()
	h := s.hub
	h.lock()
	st.WatchStreams = len(h.streams)
	for ws := range h.streams {
		st.Watchers += len(ws.watchers)
	}
	st.SlowWatchers = len(h.unsynced)
	h.unlock()
	return st
}

// observeCommit reports a backend commit's duration to Options.ObserveCommit.
func (s *Store) observeCommit(start time.Time) {
	if s.opts.ObserveCommit != nil {
		s.opts.ObserveCommit(time.Since(start))
	}
}
