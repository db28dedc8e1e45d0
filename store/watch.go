package store

import (
	"bytes"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Watches follow etcd's synced/unsynced design. A synced watcher has seen
// every revision up to the store's: Apply hands it the events of each new
// revision with a send that never blocks. When its stream's channel is full,
// the watcher becomes unsynced at that revision, and a background loop
// replays its events from the backend, a batch at a time, until it has caught
// up and is synced again. So a slow reader never blocks Apply, and never
// loses, repeats or reorders events.

// watchChanSize is the buffer of a stream's channel (a variable for tests).
var watchChanSize = 128

const (
	// syncBatchEvents bounds the events one catch-up round reads (whole
	// revisions are never split).
	syncBatchEvents = 1000
	syncInterval    = 10 * time.Millisecond
)

// WatchRequest is one watch on a stream.
type WatchRequest struct {
	Key, End []byte // End empty: Key alone; "\x00": from Key on
	StartRev int64  // 0: from the next revision
	PrevKV   bool
	NoPut    bool
	NoDelete bool
	// ProgressNotify asks for periodic empty responses carrying the revision.
	ProgressNotify bool
}

// WatchResponse is a batch of events for one watch, in revision order; the
// events of one revision always come in one response. CompactRevision != 0
// means the watch was cancelled because StartRev was compacted. Canceled
// marks the last response of a watch. Events are shared between watchers:
// read them, do not modify them.
type WatchResponse struct {
	WatchID         int64
	Events          []*mvccpb.Event
	Revision        int64
	CompactRevision int64
	Canceled        bool
}

type watcher struct {
	id       int64
	key, end []byte // end nil: one key; empty: to the end
	// minRev is the next revision the watcher has to hear about.
	minRev   int64
	prevKV   bool
	noPut    bool
	noDelete bool
	progress bool
	ws       *WatchStream
	synced   bool
}

// watchRange is a watcher's [key, end) as map key; end "" is "to the end".
type watchRange struct{ key, end string }

func (w *watcher) rangeKey() watchRange { return watchRange{string(w.key), string(w.end)} }

func (r watchRange) matches(key []byte) bool {
	return string(key) >= r.key && (r.end == "" || string(key) < r.end)
}

func (w *watcher) matches(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	return bytes.Compare(key, w.key) >= 0 && (len(w.end) == 0 || bytes.Compare(key, w.end) < 0)
}

// filter drops the events the watcher does not want; it allocates only when
// something is dropped or prev_kv is asked for.
func (w *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	if !w.noPut && !w.noDelete {
		return evs
	}
	out := make([]*mvccpb.Event, 0, len(evs))
	for _, ev := range evs {
		if (w.noPut && ev.Type == mvccpb.PUT) || (w.noDelete && ev.Type == mvccpb.DELETE) {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// watchHub holds every watcher of a store. Its lock comes after Store.mu;
// every send on a stream channel happens under it and never blocks.
type watchHub struct {
	mu   sync.Mutex
	keys map[string]map[*watcher]struct{}
	// ranges groups range watchers by their range, so an event costs one
	// check per distinct range, however many watch it.
	ranges   map[watchRange]map[*watcher]struct{}
	unsynced map[*watcher]struct{}
	streams  map[*WatchStream]struct{}
	kick     chan struct{}
}

func newWatchHub() *watchHub {
	return &watchHub{
		keys:     make(map[string]map[*watcher]struct{}),
		ranges:   make(map[watchRange]map[*watcher]struct{}),
		unsynced: make(map[*watcher]struct{}),
		streams:  make(map[*WatchStream]struct{}),
		kick:     make(chan struct{}, 1),
	}
}

func (h *watchHub) lock()   { h.mu.Lock() }
func (h *watchHub) unlock() { h.mu.Unlock() }

func (h *watchHub) addSynced(w *watcher) {
	w.synced = true
	if w.end == nil {
		set := h.keys[string(w.key)]
		if set == nil {
			set = make(map[*watcher]struct{})
			h.keys[string(w.key)] = set
		}
		set[w] = struct{}{}
		return
	}
	r := w.rangeKey()
	set := h.ranges[r]
	if set == nil {
		set = make(map[*watcher]struct{})
		h.ranges[r] = set
	}
	set[w] = struct{}{}
}

func (h *watchHub) removeSynced(w *watcher) {
	w.synced = false
	if w.end == nil {
		if set := h.keys[string(w.key)]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.keys, string(w.key))
			}
		}
		return
	}
	r := w.rangeKey()
	if set := h.ranges[r]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(h.ranges, r)
		}
	}
}

func (h *watchHub) addUnsynced(w *watcher) {
	h.unsynced[w] = struct{}{}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *watchHub) remove(w *watcher) {
	if w.synced {
		h.removeSynced(w)
	} else {
		delete(h.unsynced, w)
	}
	delete(w.ws.watchers, w.id)
}

// notify hands the events of the new revision rev to the synced watchers.
// Called by Apply with Store.mu held.
func (h *watchHub) notify(s *Store, rev int64, evs []*mvccpb.Event) {
	h.lock()
	defer h.unlock()
	if len(h.keys) == 0 && len(h.ranges) == 0 {
		return
	}
	var batches map[*watcher][]*mvccpb.Event
	add := func(w *watcher, ev *mvccpb.Event) {
		if w.minRev > rev {
			return // a watch that starts in the future
		}
		if batches == nil {
			batches = make(map[*watcher][]*mvccpb.Event)
		}
		batches[w] = append(batches[w], ev)
	}
	for _, ev := range evs {
		for w := range h.keys[string(ev.Kv.Key)] {
			add(w, ev)
		}
		for r, set := range h.ranges {
			if r.matches(ev.Kv.Key) {
				for w := range set {
					add(w, ev)
				}
			}
		}
	}
	if len(batches) == 0 {
		return
	}
	rd := txReader{s.be}
	for w, wevs := range batches {
		wevs = w.filter(wevs)
		if len(wevs) == 0 {
			w.minRev = rev + 1
			continue
		}
		if w.prevKV {
			wevs = s.withPrevKV(wevs, rd)
		}
		if w.ws.trySend(WatchResponse{WatchID: w.id, Events: wevs, Revision: rev}) {
			w.minRev = rev + 1
			continue
		}
		// The reader is behind: catch up from the backend from rev on.
		h.removeSynced(w)
		w.minRev = rev
		h.addUnsynced(w)
	}
}

// withPrevKV copies the events, adding each key's value before the event.
func (s *Store) withPrevKV(evs []*mvccpb.Event, rd kvReader) []*mvccpb.Event {
	out := make([]*mvccpb.Event, len(evs))
	for i, ev := range evs {
		e := &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
		if ki := s.idx.get(ev.Kv.Key); ki != nil {
			if mod, _, _, ok := ki.get(ev.Kv.ModRevision - 1); ok {
				if kv, err := rd.get(mod); err == nil {
					e.PrevKv = kv
				}
			}
		}
		out[i] = e
	}
	return out
}

// unsyncAll makes every watcher catch up from the backend (after Restore).
func (h *watchHub) unsyncAll(rev int64) {
	h.lock()
	defer h.unlock()
	for ws := range h.streams {
		for _, w := range ws.watchers {
			if w.synced {
				h.removeSynced(w)
				w.minRev = min(w.minRev, rev+1)
				h.addUnsynced(w)
			}
		}
	}
}

func (h *watchHub) closeAll() {
	h.lock()
	defer h.unlock()
	for ws := range h.streams {
		ws.closeLocked()
	}
}

// runWatchSync catches unsynced watchers up and sends progress notifications
// until s.stop closes.
func (s *Store) runWatchSync() {
	retry := time.NewTimer(syncInterval)
	defer retry.Stop()
	progress := time.NewTicker(s.opts.ProgressInterval)
	defer progress.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.hub.kick:
		case <-retry.C:
		case <-progress.C:
			s.sendProgress(func(w *watcher) bool { return w.progress })
			continue
		}
		// Poll only while some watcher is behind: at once while it moves,
		// every syncInterval while its reader makes no room.
		switch remaining, moved := s.syncWatchers(); {
		case remaining && moved:
			retry.Reset(0)
		case remaining:
			retry.Reset(syncInterval)
		}
	}
}

// syncWatchers runs one catch-up round; it reports whether unsynced
// watchers remain and whether any of them moved on.
func (s *Store) syncWatchers() (remaining, moved bool) {
	h := s.hub
	h.lock()
	n := len(h.unsynced)
	h.unlock()
	if n == 0 {
		return false, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, false
	}
	h.lock()
	defer h.unlock()
	defer func() { remaining = len(h.unsynced) > 0 }()
	cur := s.rev
	from := int64(-1)
	for w := range h.unsynced {
		switch {
		case w.minRev < s.compactRev:
			if w.ws.trySend(WatchResponse{WatchID: w.id, CompactRevision: s.compactRev, Canceled: true, Revision: cur}) {
				h.remove(w)
				moved = true
			}
		case w.minRev > cur:
			delete(h.unsynced, w)
			h.addSynced(w)
			moved = true
		case w.ws.full():
			// Its reader has not made room yet: reading for it would be
			// wasted work under the store's lock.
		case from == -1 || w.minRev < from:
			from = w.minRev
		}
	}
	if from == -1 {
		return
	}
	rd := &viewReader{b: s.be}
	defer rd.close()
	type revEvents struct {
		rev int64
		evs []*mvccpb.Event
	}
	var revs []revEvents
	count := 0
	err := rd.scan(from, cur, func(r revision, tomb bool, val []byte) bool {
		if len(revs) == 0 || revs[len(revs)-1].rev != r.main {
			if count >= syncBatchEvents {
				return false
			}
			revs = append(revs, revEvents{rev: r.main})
		}
		kv, err := decodeKV(val)
		if err != nil {
			s.lg.Error("watch catch-up skipped a revision it cannot decode", "revision", r.main, "err", err)
			return true
		}
		ev := &mvccpb.Event{Type: mvccpb.PUT, Kv: kv}
		if tomb {
			ev.Type = mvccpb.DELETE
			kv.ModRevision = r.main
		}
		last := &revs[len(revs)-1]
		last.evs = append(last.evs, ev)
		count++
		return true
	})
	if err != nil {
		s.lg.Error("watch catch-up read failed", "err", err)
		return
	}
	to := cur
	if len(revs) > 0 && count >= syncBatchEvents {
		to = revs[len(revs)-1].rev
	}
	for w := range h.unsynced {
		// A watcher behind from was full when from was chosen, so the
		// scan does not cover it; it may have made room since. Next round.
		if w.minRev < from || w.minRev < s.compactRev || w.minRev > to || w.ws.full() {
			continue
		}
		var evs []*mvccpb.Event
		for _, re := range revs {
			if re.rev < w.minRev {
				continue
			}
			for _, ev := range re.evs {
				if w.matches(ev.Kv.Key) {
					evs = append(evs, ev)
				}
			}
		}
		evs = w.filter(evs)
		if len(evs) > 0 {
			if w.prevKV {
				evs = s.withPrevKV(evs, rd)
			}
			if !w.ws.trySend(WatchResponse{WatchID: w.id, Events: evs, Revision: to}) {
				continue // still behind: next round
			}
		}
		w.minRev = to + 1
		moved = true
		if w.minRev > cur {
			delete(h.unsynced, w)
			h.addSynced(w)
		}
	}
	return
}

// sendProgress sends an empty response with the current revision to the
// synced watchers that pick selects.
func (s *Store) sendProgress(pick func(*watcher) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.hub
	h.lock()
	defer h.unlock()
	for ws := range h.streams {
		ws.progressLocked(s.rev, pick)
	}
}

// WatchStream multiplexes watches for one client stream.
type WatchStream struct {
	s        *Store
	ch       chan WatchResponse
	watchers map[int64]*watcher // under hub lock
	nextID   int64
	closed   bool
}

// NewWatchStream opens a stream of watches.
func (s *Store) NewWatchStream() *WatchStream {
	ws := &WatchStream{s: s, ch: make(chan WatchResponse, watchChanSize), watchers: make(map[int64]*watcher)}
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.hub.lock()
	defer s.hub.unlock()
	s.hub.streams[ws] = struct{}{}
	if s.closed {
		ws.closeLocked()
	}
	return ws
}

func (ws *WatchStream) full() bool { return len(ws.ch) == cap(ws.ch) }

func (ws *WatchStream) trySend(r WatchResponse) bool {
	if ws.closed {
		return false
	}
	select {
	case ws.ch <- r:
		return true
	default:
		return false
	}
}

// Watch starts a watch with the given ID, or with the next free one when id
// is AutoWatchID (IDs then count up from 0, as etcd's do). When StartRev is
// compacted the watch is cancelled by a response on Chan (CompactRevision
// set, Canceled true), not by an error.
func (ws *WatchStream) Watch(id int64, r WatchRequest) (int64, error) {
	var end []byte // nil: one key; empty: to the end
	switch {
	case len(r.End) == 1 && r.End[0] == 0:
		end = []byte{}
	case len(r.End) > 0:
		end = r.End
	}
	if len(end) > 0 && bytes.Compare(r.Key, end) >= 0 {
		return -1, ErrEmptyWatcherRange
	}
	s := ws.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.hub
	h.lock()
	defer h.unlock()
	if ws.closed || s.closed {
		return -1, ErrClosed
	}
	if id == AutoWatchID {
		for ws.watchers[ws.nextID] != nil {
			ws.nextID++
		}
		id = ws.nextID
		ws.nextID++
	} else if ws.watchers[id] != nil {
		return -1, ErrWatcherDuplicateID
	}
	w := &watcher{
		id:       id,
		key:      bytes.Clone(r.Key),
		prevKV:   r.PrevKV,
		noPut:    r.NoPut,
		noDelete: r.NoDelete,
		progress: r.ProgressNotify,
		ws:       ws,
	}
	if end != nil {
		w.end = append([]byte{}, end...)
	}
	ws.watchers[id] = w
	switch {
	case r.StartRev <= 0:
		w.minRev = s.rev + 1
		h.addSynced(w)
	case r.StartRev > s.rev:
		w.minRev = r.StartRev
		h.addSynced(w)
	default:
		w.minRev = r.StartRev
		h.addUnsynced(w)
	}
	return id, nil
}

// AutoWatchID asks Watch to choose the ID.
const AutoWatchID int64 = -1

// Chan delivers responses for all the stream's watches; it is closed by
// Close (of the stream or of the store).
func (ws *WatchStream) Chan() <-chan WatchResponse { return ws.ch }

// Cancel stops a watch. It sends nothing on Chan; once it returns, no
// further response of that watch is sent.
func (ws *WatchStream) Cancel(id int64) error {
	h := ws.s.hub
	h.lock()
	defer h.unlock()
	w := ws.watchers[id]
	if w == nil {
		return ErrWatcherNotExist
	}
	h.remove(w)
	return nil
}

// RequestProgress sends a progress response (no events, current revision) to
// every watch that is in sync.
func (ws *WatchStream) RequestProgress() {
	s := ws.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.hub.lock()
	defer s.hub.unlock()
	ws.progressLocked(s.rev, func(*watcher) bool { return true })
}

// ProgressWatchID is the WatchID of a stream-wide progress response
// (etcd's clientv3.InvalidWatchID).
const ProgressWatchID int64 = -1

// RequestProgressAll is etcd's stream-wide progress request: when every
// watch of the stream is in sync it sends one response with WatchID
// ProgressWatchID and the current revision, and reports true; otherwise it
// sends nothing and reports false (ask again later, as etcd defers it).
func (ws *WatchStream) RequestProgressAll() bool {
	s := ws.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.hub.lock()
	defer s.hub.unlock()
	for _, w := range ws.watchers {
		if !w.synced {
			return false
		}
	}
	return ws.trySend(WatchResponse{WatchID: ProgressWatchID, Revision: s.rev})
}

func (ws *WatchStream) progressLocked(rev int64, pick func(*watcher) bool) {
	for _, w := range ws.watchers {
		if w.synced && pick(w) {
			ws.trySend(WatchResponse{WatchID: w.id, Revision: rev})
		}
	}
}

// Close stops all the stream's watches and closes Chan.
func (ws *WatchStream) Close() {
	h := ws.s.hub
	h.lock()
	defer h.unlock()
	ws.closeLocked()
}

func (ws *WatchStream) closeLocked() {
	if ws.closed {
		return
	}
	h := ws.s.hub
	for _, w := range ws.watchers {
		h.remove(w)
	}
	ws.closed = true
	close(ws.ch)
	delete(h.streams, ws)
}
