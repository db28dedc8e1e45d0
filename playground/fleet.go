package playground

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/fleet"
)

const (
	// maxFleetRows bounds the rows sent to a page, so that a fleet of
	// thousands of hosts does not freeze the browser.
	maxFleetRows = 500
	// maxFleetError bounds each row's error, in runes.
	maxFleetError = 200
	// fleetEvery is the least time between two "fleet" events: the changes
	// in between (a rollout updating every host at once) go out together.
	fleetEvery = 250 * time.Millisecond
)

// fleetWatcher keeps a Hub's fleet panel following the status the agents
// publish under a prefix. It owns its fleet.View (which is not safe for
// concurrent use): the view is read, watched and published from run's
// goroutine only.
type fleetWatcher struct {
	hub    *Hub
	cli    *clientv3.Client
	prefix string

	view *fleet.View
	rev  int64  // the store revision of the last read or watch response
	err  string // why the last read failed; "" once one succeeds
	pub  throttle
}

func newFleetWatcher(hub *Hub, cli *clientv3.Client, prefix string) *fleetWatcher {
	w := &fleetWatcher{hub: hub, cli: cli, prefix: prefix,
		view: fleet.NewView(fleet.Options{Prefix: prefix, Timeout: 3 * time.Second})}
	w.pub = throttle{every: fleetEvery, publish: func() { hub.SetFleet(fleetPanel(w.view, prefix, w.rev, w.err)) }}
	return w
}

// run keeps the hub's fleet following the prefix until ctx ends:
//
//  1. read the prefix into the view;
//  2. watch it from the read's revision+1, with WithRequireLeader,
//     applying each response's events to the view;
//  3. when the watch ends (a compaction, a lost leader, a broken stream),
//     or the read fails, wait watchRetry and go back to step 1.
//
// A read, each response with events, and a read's new error each mark
// the view changed; the throttle publishes it at once or, within
// fleetEvery of the last publish, together with whatever follows.
func (w *fleetWatcher) run(ctx context.Context) {
	defer w.pub.stop()
	for ctx.Err() == nil {
		if err := w.view.Read(ctx, w.cli); err != nil {
			if ctx.Err() != nil {
				return
			}
			if msg := fmt.Sprintf("read %s: %v", w.prefix, err); msg != w.err {
				w.err = msg
				w.pub.changed()
			}
		} else {
			w.rev, w.err = w.view.Revision(), ""
			w.pub.changed()
			w.watch(ctx)
		}
		w.pause(ctx, watchRetry)
	}
}

// pause waits d or until ctx ends, publishing a change that comes due.
func (w *fleetWatcher) pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-w.pub.C():
			w.pub.fire()
		}
	}
}

// watch applies the prefix's changes after the view's revision until the
// watch ends or ctx does.
func (w *fleetWatcher) watch(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := w.cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(w.view.Revision()+1))
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.pub.C():
			w.pub.fire()
		case resp, ok := <-wch:
			if !ok || resp.Canceled || resp.Err() != nil {
				return
			}
			for _, ev := range resp.Events {
				w.view.Apply(ev)
			}
			w.rev = max(w.rev, resp.Header.Revision)
			if len(resp.Events) > 0 {
				w.pub.changed()
			}
		}
	}
}

// throttle calls publish at most once per every: a change after a quiet
// spell at once, and the changes that follow within every together, once
// every has passed since the last call. Its owner selects on C and calls
// fire when it receives.
type throttle struct {
	every   time.Duration
	publish func()
	last    time.Time   // when publish was last called
	pending bool        // a change waits for the timer
	timer   *time.Timer // nil until a change first waited
}

// changed notes a change: published now, or when the timer fires.
func (t *throttle) changed() {
	if t.pending {
		return
	}
	wait := time.Until(t.last.Add(t.every))
	if wait <= 0 {
		t.fire()
		return
	}
	t.pending = true
	if t.timer == nil {
		t.timer = time.NewTimer(wait)
	} else {
		t.timer.Reset(wait)
	}
}

// C receives when the waiting change is due; nil while none waits.
func (t *throttle) C() <-chan time.Time {
	if !t.pending {
		return nil
	}
	return t.timer.C
}

// fire publishes now.
func (t *throttle) fire() {
	t.pending, t.last = false, time.Now()
	t.publish()
}

func (t *throttle) stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}

// fleetPanel is what the page draws of v: every host and template counted,
// at most maxFleetRows of them as rows, the failed first.
func fleetPanel(v *fleet.View, prefix string, rev int64, readErr string) Fleet {
	f := Fleet{Prefix: prefix, Revision: max(rev, v.Revision()), Error: readErr, Rows: []FleetRow{}}
	var failed, rest []FleetRow
	add := func(r FleetRow) {
		if r.Failed {
			failed = append(failed, r)
		} else {
			rest = append(rest, r)
		}
	}
	for _, h := range v.Hosts() {
		f.Hosts++
		if h.Status == nil {
			add(FleetRow{Host: h.Name, Outcome: fleet.Invalid, Error: shorten(h.Invalid, maxFleetError), Failed: true})
			continue
		}
		if len(h.Status.Templates) == 0 {
			add(FleetRow{Host: h.Name})
		}
		for _, s := range h.Status.Templates {
			f.Templates++
			r := FleetRow{Host: h.Name, Template: s.Template, Revision: s.Revision, Outcome: s.Outcome,
				Error: shorten(s.Error, maxFleetError), Failed: s.Failed()}
			if !s.AppliedAt.IsZero() {
				r.AppliedAt = s.AppliedAt.UnixMilli()
			}
			add(r)
		}
	}
	f.Failed = len(failed)
	f.Rows = append(append(f.Rows, failed...), rest...)
	if len(f.Rows) > maxFleetRows {
		f.Rows, f.More = f.Rows[:maxFleetRows], len(f.Rows)-maxFleetRows
	}
	return f
}

// shorten flattens s to one line of at most n runes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}
