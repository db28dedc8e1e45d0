package playground

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Dashboard draws a running tend or etcd cluster through clientv3 only:
// each member's status, the member list, the keys under a prefix and a
// watch on them, and the status the agents publish (the fleet). It changes
// nothing.
type Dashboard struct {
	cli  *clientv3.Client
	opts DashboardOptions
	hub  *Hub
}

// DashboardOptions say what a Dashboard shows.
type DashboardOptions struct {
	// Prefix is the keys shown and watched ("" for all).
	Prefix string
	// FleetPrefix is where the agents publish their status (agent.HostStatus,
	// as tend fleet status reads it); "" turns the fleet panel off.
	FleetPrefix string
	// Interval is how often to ask every member for its status (zero:
	// DefaultDashboardInterval).
	Interval time.Duration
}

// DefaultDashboardInterval is how often a Dashboard asks every member for
// its status.
const DefaultDashboardInterval = time.Second

// NewDashboard returns a Dashboard of the cluster cli reaches, showing what
// o says. Run feeds it.
func NewDashboard(cli *clientv3.Client, o DashboardOptions) *Dashboard {
	if o.Interval <= 0 {
		o.Interval = DefaultDashboardInterval
	}
	return &Dashboard{cli: cli, opts: o, hub: NewHub()}
}

// Hub returns what the page is fed from.
func (d *Dashboard) Hub() *Hub { return d.hub }

// Run polls the cluster and follows its keys and its fleet until ctx ends.
func (d *Dashboard) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		w := &keyWatcher{hub: d.hub, prefix: d.opts.Prefix, client: func() *clientv3.Client { return d.cli }}
		w.run(ctx)
	})
	if d.opts.FleetPrefix != "" {
		wg.Go(func() { newFleetWatcher(d.hub, d.cli, d.opts.FleetPrefix).run(ctx) })
	}
	tr := newTracker()
	tr.reportDown = true
	prev := map[string]MemberView{}
	reached := true
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		st := d.state(ctx, prev)
		now := time.Now()
		switch {
		case st.Error != "" && reached:
			d.hub.Add(Entry{Kind: KindDown, Text: st.Error})
			reached = false
		case st.Error == "" && !reached:
			d.hub.Add(Entry{Kind: KindConnected, Text: "reached the cluster again"})
			reached = true
		}
		for _, e := range tr.update(st, now) {
			d.hub.Add(e)
		}
		d.hub.SetState(st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// state asks the cluster for its members and each member for its status.
// prev holds the members last seen, drawn down when the list is out of
// reach; it is updated.
func (d *Dashboard) state(ctx context.Context, prev map[string]MemberView) State {
	st := State{Mode: "dashboard", Now: time.Now().UnixMilli(), Prefix: d.opts.Prefix, Endpoints: d.cli.Endpoints()}
	if st.Prefix == "" {
		st.Prefix = "(all keys)"
	}
	rctx, cancel := context.WithTimeout(ctx, max(d.opts.Interval, 2*time.Second))
	defer cancel()
	ml, err := d.cli.MemberList(rctx)
	if err != nil {
		st.Error = fmt.Sprintf("no member answers through %s: %v", strings.Join(d.cli.Endpoints(), ","), err)
		for _, v := range prev {
			v.Role, v.Error = RoleDown, "unreachable"
			st.Members = append(st.Members, v)
		}
		sortMembers(st.Members)
		return st
	}
	views := make([]MemberView, len(ml.Members))
	var wg sync.WaitGroup
	for i, mi := range ml.Members {
		v := MemberView{ID: hexID(mi.ID), Name: mi.Name, Learner: mi.IsLearner}
		if v.Name == "" {
			v.Name = "(unstarted)"
		}
		if len(mi.PeerURLs) > 0 {
			v.PeerURL = mi.PeerURLs[0]
		}
		if len(mi.ClientURLs) == 0 {
			v.Role, v.Error = RoleDown, "not started yet (no client URL)"
			views[i] = v
			continue
		}
		v.ClientURL = mi.ClientURLs[0]
		wg.Add(1)
		go func() {
			defer wg.Done()
			views[i] = d.status(rctx, v)
		}()
	}
	wg.Wait()
	for i, v := range views {
		if p, ok := prev[v.ID]; ok && v.Role == RoleDown {
			// Drawn greyed with what it last said.
			views[i].Term, views[i].Commit, views[i].Applied = p.Term, p.Commit, p.Applied
		}
	}
	clear(prev)
	for _, v := range views {
		prev[v.ID] = v
	}
	st.Members = views
	sortMembers(st.Members)
	st.Leader, st.Term = leaderOf(st.Members)
	return st
}

// status fills v from its member's own Status answer.
func (d *Dashboard) status(ctx context.Context, v MemberView) MemberView {
	s, err := d.cli.Status(ctx, v.ClientURL)
	if err != nil {
		v.Role, v.Error = RoleDown, fmt.Sprintf("status from %s: %v", v.ClientURL, err)
		return v
	}
	v.Term, v.Commit, v.Applied = s.RaftTerm, s.RaftIndex, s.RaftAppliedIndex
	v.DBSize, v.Version = s.DbSize, s.Version
	if s.Leader != 0 {
		v.Leader = hexID(s.Leader)
	}
	switch {
	case s.Leader != 0 && s.Leader == s.Header.GetMemberId():
		v.Role = "leader"
	case s.IsLearner:
		v.Role = "learner"
	case s.Leader == 0:
		v.Role = RoleUnknown
	default:
		v.Role = "follower"
	}
	if len(s.Errors) > 0 {
		v.Error = strings.Join(s.Errors, "; ")
	}
	return v
}

// sortMembers orders members by name (then ID), so each keeps its place
// on the ring from one second to the next.
func sortMembers(ms []MemberView) {
	slices.SortFunc(ms, func(a, b MemberView) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
