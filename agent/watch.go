package agent

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/templates"
)

// watch is one clientv3 watch over a key or prefix, feeding the loop.
type watch struct {
	target target
	cancel context.CancelFunc
	done   chan struct{}
	// mirror is the target's content as the watch delivered it; nil until
	// loaded, and when loading failed. Only the loop touches it.
	mirror *mirror
}

// watchEvent is what a watch tells the loop: the events of one watch
// response (up to rev), with the whole target at rev when they are its
// first (load), or that the history it needs was compacted away.
type watchEvent struct {
	w         *watch
	load      []*mvccpb.KeyValue
	loaded    bool
	events    []*mvccpb.Event
	rev       int64
	compacted bool
}

// startWatch watches t from revision from on. The goroutine stops when the
// loop cancels the watch or ctx ends; when the stream breaks otherwise it
// resumes after the last revision it delivered, with a backoff.
func (l *loop) startWatch(ctx context.Context, t target, from int64) {
	wctx, cancel := context.WithCancel(ctx)
	w := &watch{target: t, cancel: cancel, done: make(chan struct{})}
	l.watches[t] = w
	log := l.log.With("watch", t.key, "prefix", t.prefix)
	go func() {
		defer close(w.done)
		next := from
		loaded := false // the loop has the target's mirror
		for attempt := 0; ; attempt++ {
			opts := []clientv3.OpOption{clientv3.WithRev(next)}
			if t.prefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			// A watch that requires a leader ends when its member is cut
			// off from the rest, and resumes (below) through another
			// member, instead of waiting on stale data for ever.
			for resp := range l.a.client.Watch(clientv3.WithRequireLeader(wctx), t.key, opts...) {
				if resp.CompactRevision != 0 {
					log.Warn("watched history compacted; re-reading everything", "from", next, "compact-revision", resp.CompactRevision)
					l.send(wctx, watchEvent{w: w, compacted: true})
					return
				}
				if err := resp.Err(); err != nil {
					log.Warn("watch error", "error", err)
					continue
				}
				if len(resp.Events) == 0 {
					continue
				}
				ev := watchEvent{w: w}
				for _, e := range resp.Events {
					ev.events = append(ev.events, (*mvccpb.Event)(e))
					ev.rev = max(ev.rev, e.Kv.ModRevision)
				}
				next = ev.rev + 1
				attempt = 0
				if !loaded {
					// The target's first change: read all of it at this
					// revision, and from now on keep it from the events.
					switch kvs, err := l.readTarget(wctx, t, ev.rev); {
					case wctx.Err() != nil:
						return
					case err != nil && compacted(err):
						log.Warn("watched history compacted; re-reading everything", "revision", ev.rev, "error", err)
						l.send(wctx, watchEvent{w: w, compacted: true})
						return
					case err != nil:
						log.Warn("mirror not loaded; renders read the store", "revision", ev.rev, "error", err)
					default:
						ev.load, ev.loaded, loaded = kvs, true, true
					}
				}
				if !l.send(wctx, ev) {
					return
				}
			}
			if wctx.Err() != nil {
				return
			}
			wait := backoff(attempt + 1)
			log.Warn("watch stream closed; resuming", "from", next, "retry-in", wait)
			select {
			case <-time.After(wait):
			case <-wctx.Done():
				return
			}
		}
	}()
}

// send hands ev to the loop; false when the watch was stopped meanwhile.
func (l *loop) send(ctx context.Context, ev watchEvent) bool {
	select {
	case l.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// readTarget reads everything under t at rev.
func (l *loop) readTarget(ctx context.Context, t target, rev int64) ([]*mvccpb.KeyValue, error) {
	opts := []clientv3.OpOption{clientv3.WithRev(rev)}
	if t.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	rctx, cancel := context.WithTimeout(ctx, l.readTimeout())
	defer cancel()
	resp, err := l.a.client.Get(rctx, t.key, opts...)
	if err != nil {
		return nil, fmt.Errorf("read %s at revision %d: %w", t.key, rev, err)
	}
	return resp.Kvs, nil
}

// stopWatches cancels every watch and waits for its goroutine.
func (l *loop) stopWatches() {
	for t, w := range l.watches {
		w.cancel()
		<-w.done
		delete(l.watches, t)
	}
	l.a.metrics.watchStreams.Set(0)
}

// syncWatches makes the watches match what the units read now: one per
// merged key or prefix. A new watch starts after the oldest revision that a
// unit it covers has read at.
func (l *loop) syncWatches(ctx context.Context) {
	var scheds []*sched
	for _, u := range l.units {
		scheds = append(scheds, &u.sched)
	}
	for _, e := range l.envs {
		scheds = append(scheds, &e.sched)
	}
	deps := make([]templates.Deps, 0, len(scheds))
	for _, s := range scheds {
		deps = append(deps, s.deps)
	}
	want := map[target]bool{}
	for _, t := range mergeTargets(deps...) {
		want[t] = true
		if l.watches[t] != nil {
			continue
		}
		from := l.seen
		for _, s := range scheds {
			if s.rev < from && depsWithin(s.deps, t) {
				from = s.rev
			}
		}
		l.startWatch(ctx, t, from+1)
	}
	for t, w := range l.watches {
		if !want[t] {
			w.cancel()
			<-w.done
			delete(l.watches, t)
		}
	}
	l.a.metrics.watchStreams.Set(float64(len(l.watches)))
}

// handle takes one watch event: it marks the units the changes concern.
func (l *loop) handle(ev watchEvent, now time.Time) {
	if l.watches[ev.w.target] != ev.w {
		return // from a watch stopped meanwhile
	}
	if ev.compacted {
		l.full, l.fullAt = true, now
		return
	}
	switch {
	case ev.loaded:
		ev.w.mirror = newMirror(ev.w.target, ev.load, ev.rev) // the events are in it
	case ev.w.mirror != nil:
		ev.w.mirror.apply(ev.events, ev.rev)
	}
	l.seen = max(l.seen, ev.rev)
	for _, c := range ev.events {
		key, rev := string(c.Kv.Key), c.Kv.ModRevision
		for _, u := range l.units {
			if rev > u.rev && depsCover(u.deps, key) {
				u.mark(now, false)
			}
		}
		for _, e := range l.envs {
			if rev > e.rev && depsCover(e.deps, key) {
				e.mark(now, false)
			}
		}
	}
}

// viewFor is the view unit u renders from, and its revision: the mirror
// of a watch that holds everything u read last time, when that mirror is
// no older than u's last render; else the store at rev.
func (l *loop) viewFor(ctx context.Context, u *unit, rev int64) (templates.View, int64) {
	for _, w := range l.watches {
		if m := w.mirror; m != nil && m.rev >= u.rev && m.holds(u.deps) {
			return mirrorView{m: m, store: newView(ctx, l.a.client, m.rev)}, m.rev
		}
	}
	return newView(ctx, l.a.client, rev), rev
}
