package agent

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/templates"
)

func countOnly() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithCountOnly()}
}

// watch is one clientv3 watch over a key or prefix, feeding the loop.
type watch struct {
	target target
	cancel context.CancelFunc
	done   chan struct{}
}

// keyRev is one changed key and the revision it changed at.
type keyRev struct {
	key string
	rev int64
}

// watchEvent is what a watch tells the loop: changed keys, or that the
// history it needs was compacted away.
type watchEvent struct {
	w         *watch
	changes   []keyRev
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
		for attempt := 0; ; attempt++ {
			opts := []clientv3.OpOption{clientv3.WithRev(next)}
			if t.prefix {
				opts = append(opts, clientv3.WithPrefix())
			}
			for resp := range l.a.client.Watch(wctx, t.key, opts...) {
				if resp.CompactRevision != 0 {
					log.Warn("watched history compacted; re-reading everything", "from", next, "compact-revision", resp.CompactRevision)
					select {
					case l.events <- watchEvent{w: w, compacted: true}:
					case <-wctx.Done():
					}
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
					ev.changes = append(ev.changes, keyRev{key: string(e.Kv.Key), rev: e.Kv.ModRevision})
					ev.rev = max(ev.rev, e.Kv.ModRevision)
				}
				next = ev.rev + 1
				attempt = 0
				select {
				case l.events <- ev:
				case <-wctx.Done():
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

// stopWatches cancels every watch and waits for its goroutine.
func (l *loop) stopWatches() {
	for t, w := range l.watches {
		w.cancel()
		<-w.done
		delete(l.watches, t)
	}
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
	l.seen = max(l.seen, ev.rev)
	for _, c := range ev.changes {
		for _, u := range l.units {
			if c.rev > u.rev && depsCover(u.deps, c.key) {
				u.mark(now, false)
			}
		}
		for _, e := range l.envs {
			if c.rev > e.rev && depsCover(e.deps, c.key) {
				e.mark(now, false)
			}
		}
	}
}
