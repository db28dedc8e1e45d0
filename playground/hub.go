package playground

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Hub holds what the page shows and fans every change out to subscribers
// (see the package doc for the order they see it in).
type Hub struct {
	mu       sync.Mutex
	subs     map[*subscriber]struct{} // guarded by mu
	state    latest[State]            // guarded by mu
	timeline []Entry                  // guarded by mu: the latest maxTimeline entries
	seq      int64                    // guarded by mu
	feed     []WatchEvent             // guarded by mu: the latest maxFeed events
	keys     map[string]KV            // guarded by mu
	rev      int64                    // guarded by mu: the keyspace's revision
	keysCap  bool                     // guarded by mu: the keyspace was truncated
	fleet    latest[Fleet]            // guarded by mu
}

// latest is the last value of a kind the Hub publishes whole each time,
// and its frame, which a new subscriber gets first.
type latest[T any] struct {
	v     T
	frame []byte // nil until one is published
}

// publish sets l to v and sends v to every subscriber as event.
func publish[T any](h *Hub, l *latest[T], event string, v T) {
	f := frame(event, v)
	h.mu.Lock()
	defer h.mu.Unlock()
	l.v, l.frame = v, f
	h.broadcastLocked(f)
}

// current returns the last value published to l.
func current[T any](h *Hub, l *latest[T]) T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return l.v
}

const (
	maxTimeline = 200
	maxFeed     = 100
	// maxKeys bounds the keyspace sent to a page.
	maxKeys = 500
	// subscriberBuffer is how many frames a page may fall behind before it
	// is dropped (and reconnects).
	subscriberBuffer = 512
)

type subscriber struct {
	c    chan []byte
	gone chan struct{} // closed when the hub dropped it
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{subs: map[*subscriber]struct{}{}, keys: map[string]KV{}}
}

// frame encodes one Server-Sent Event.
func frame(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Every type sent here marshals; a failure is a bug to see.
		data, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", event, data)
	return b.Bytes()
}

// broadcastLocked sends f to every subscriber, dropping those that are
// full.
func (h *Hub) broadcastLocked(f []byte) {
	for s := range h.subs {
		select {
		case s.c <- f:
		default:
			delete(h.subs, s)
			close(s.gone)
		}
	}
}

// Subscribe returns the frames a new page gets first, the channel of those
// that follow, a channel closed if the hub drops the subscriber, and the
// function that ends the subscription.
func (h *Hub) Subscribe() (first [][]byte, c <-chan []byte, gone <-chan struct{}, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state.frame != nil {
		first = append(first, h.state.frame)
	}
	first = append(first,
		frame("timeline-all", h.timeline),
		frame("keys", h.keyspaceLocked()),
		frame("feed-all", h.feed))
	if h.fleet.frame != nil {
		first = append(first, h.fleet.frame)
	}
	s := &subscriber{c: make(chan []byte, subscriberBuffer), gone: make(chan struct{})}
	h.subs[s] = struct{}{}
	return first, s.c, s.gone, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[s]; ok {
			delete(h.subs, s)
			close(s.gone)
		}
	}
}

// SetState publishes the cluster's state.
func (h *Hub) SetState(st State) { publish(h, &h.state, "state", st) }

// State returns the last state published.
func (h *Hub) State() State { return current(h, &h.state) }

// SetFleet publishes the fleet panel.
func (h *Hub) SetFleet(f Fleet) { publish(h, &h.fleet, "fleet", f) }

// Fleet returns the last fleet published (its Prefix empty when none was).
func (h *Hub) Fleet() Fleet { return current(h, &h.fleet) }

// Msgs publishes Raft messages to draw.
func (h *Hub) Msgs(ms []Msg) {
	if len(ms) == 0 {
		return
	}
	f := frame("msgs", ms)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(f)
}

// Add appends a timeline entry, or folds it into the last one when that is
// the same kind, member and term (a member pre-voting again and again).
func (h *Hub) Add(e Entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.At == 0 {
		e.At = time.Now().UnixMilli()
	}
	if n := len(h.timeline); n > 0 {
		last := &h.timeline[n-1]
		if e.Kind != KindAction && last.Kind == e.Kind && last.Member == e.Member && last.Term == e.Term && last.Text == e.Text {
			last.Count++
			last.At = e.At
			h.broadcastLocked(frame("timeline", *last))
			return
		}
	}
	h.seq++
	e.Seq, e.Count = h.seq, 1
	h.timeline = append(h.timeline, e)
	if len(h.timeline) > maxTimeline {
		h.timeline = append([]Entry(nil), h.timeline[len(h.timeline)-maxTimeline:]...)
	}
	h.broadcastLocked(frame("timeline", e))
}

// Timeline returns a copy of the timeline.
func (h *Hub) Timeline() []Entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Entry(nil), h.timeline...)
}

// ResetKeys replaces the keyspace (a fresh read at revision rev).
func (h *Hub) ResetKeys(rev int64, kvs []KV, truncated bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.keys)
	for _, kv := range kvs {
		h.keys[kv.Key] = kv
	}
	h.rev, h.keysCap = rev, truncated
	h.broadcastLocked(frame("keys", h.keyspaceLocked()))
}

// Watched applies watch events to the keyspace and the feed.
func (h *Hub) Watched(evs []WatchEvent, rev int64) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		switch ev.Type {
		case "PUT":
			if _, ok := h.keys[ev.Key]; ok || len(h.keys) < maxKeys {
				h.keys[ev.Key] = KV{Key: ev.Key, Value: ev.Value, ModRevision: ev.Revision, Version: ev.Version}
			} else {
				h.keysCap = true
			}
		case "DELETE":
			delete(h.keys, ev.Key)
		}
	}
	h.rev = max(h.rev, rev)
	h.feed = append(h.feed, evs...)
	if len(h.feed) > maxFeed {
		h.feed = append([]WatchEvent(nil), h.feed[len(h.feed)-maxFeed:]...)
	}
	h.broadcastLocked(frame("watch", evs))
}

// Keyspace returns the keyspace panel's content.
func (h *Hub) Keyspace() Keyspace {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keyspaceLocked()
}

func (h *Hub) keyspaceLocked() Keyspace {
	ks := Keyspace{Revision: h.rev, Truncated: h.keysCap, Keys: make([]KV, 0, len(h.keys))}
	for _, kv := range h.keys {
		ks.Keys = append(ks.Keys, kv)
	}
	sort.Slice(ks.Keys, func(i, j int) bool { return ks.Keys[i].Key < ks.Keys[j].Key })
	if len(ks.Keys) > maxKeys {
		ks.Keys, ks.Truncated = ks.Keys[:maxKeys], true
	}
	return ks
}
