package playground

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/cluster"
)

// Request is the body of a POST /api/<action>.
type Request struct {
	Member       string `json:"member,omitempty"` // name (m1) or hex ID
	Key          string `json:"key,omitempty"`
	Value        string `json:"value,omitempty"`
	Serializable bool   `json:"serializable,omitempty"`
	Slow         int    `json:"slow,omitempty"` // slow-motion factor, 1 for real time
	// Learner makes "add" add a learner: a member that receives the log
	// but neither votes nor campaigns until "promote" makes it a voter.
	Learner bool `json:"learner,omitempty"`
}

// Actions the page can ask for.
var Actions = []string{"put", "get", "delete", "kill", "restart", "isolate", "split", "heal", "add", "promote", "remove", "slow"}

// errUnknownAction is answered to an action not in Actions.
var errUnknownAction = errors.New("unknown action")

// Act does one action and says how it went. Requests to the keyspace go
// through clientv3 to the chosen member's own client URL.
func (p *Playground) Act(ctx context.Context, action string, r Request) ActionResult {
	start := time.Now()
	res, err := p.act(ctx, action, r)
	res.Action = action
	res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		res.OK, res.Error = false, err.Error()
		if res.Text == "" {
			res.Text = err.Error()
		}
	} else {
		res.OK = true
	}
	return res
}

func (p *Playground) act(ctx context.Context, action string, r Request) (ActionResult, error) {
	switch action {
	case "put", "get", "delete":
		return p.kv(ctx, action, r)
	case "kill":
		return p.kill(r.Member)
	case "restart":
		return p.restart(ctx, r.Member)
	case "isolate":
		return p.isolate(r.Member)
	case "split":
		return p.split()
	case "heal":
		return p.heal()
	case "add":
		return p.add(ctx, r.Learner)
	case "promote":
		return p.promote(ctx, r.Member)
	case "remove":
		return p.remove(ctx, r.Member)
	case "slow":
		return p.setSlow(r.Slow)
	}
	return ActionResult{}, fmt.Errorf("%w %q (try one of %s)", errUnknownAction, action, strings.Join(Actions, ", "))
}

// requestTimeout bounds a put, get or delete from the page: long enough for
// an election, short enough that a member cut off from a majority answers
// with an error a person sees.
func (p *Playground) requestTimeout() time.Duration {
	p.mu.Lock()
	slow := p.slow
	p.mu.Unlock()
	return min(3*time.Second+time.Duration(slow)*p.opts.ElectionTimeout, 30*time.Second)
}

func (p *Playground) kv(ctx context.Context, op string, r Request) (ActionResult, error) {
	res := ActionResult{Member: r.Member, Key: r.Key, Serializable: r.Serializable && op == "get"}
	if r.Key == "" {
		return res, errors.New("give a key")
	}
	n, err := p.find(r.Member)
	if err != nil {
		return res, err
	}
	res.Member = n.name
	p.mu.Lock()
	up := n.m != nil
	p.mu.Unlock()
	if !up {
		return res, fmt.Errorf("%s is down: restart it, or choose another member", n.name)
	}
	timeout := p.requestTimeout()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	switch op {
	case "put":
		resp, err := n.cli.Put(rctx, r.Key, r.Value)
		if err != nil {
			return res, p.explain(n, err)
		}
		res.Value, res.Revision, res.ModRevision = r.Value, resp.Header.Revision, resp.Header.Revision
		res.Text = fmt.Sprintf("put %s = %q through %s: committed at revision %d in %s", r.Key, r.Value, n.name, res.Revision, ms(time.Since(start)))
	case "get":
		var opts []clientv3.OpOption
		kind := "linearizable"
		if r.Serializable {
			opts, kind = append(opts, clientv3.WithSerializable()), "serializable"
		}
		resp, err := n.cli.Get(rctx, r.Key, opts...)
		if err != nil {
			return res, p.explain(n, err)
		}
		res.Revision = resp.Header.Revision
		if len(resp.Kvs) == 0 {
			res.Text = fmt.Sprintf("%s get %s through %s: not found (at revision %d) in %s", kind, r.Key, n.name, res.Revision, ms(time.Since(start)))
			break
		}
		kv := resp.Kvs[0]
		res.Found, res.Value, res.ModRevision = true, string(kv.Value), kv.ModRevision
		res.Text = fmt.Sprintf("%s get %s through %s: %q (written at revision %d, read at %d) in %s", kind, r.Key, n.name, res.Value, kv.ModRevision, res.Revision, ms(time.Since(start)))
	case "delete":
		resp, err := n.cli.Delete(rctx, r.Key)
		if err != nil {
			return res, p.explain(n, err)
		}
		res.Revision, res.Deleted = resp.Header.Revision, resp.Deleted
		if resp.Deleted == 0 {
			// Nothing changed, so the revision did not move.
			res.Text = fmt.Sprintf("delete %s through %s: no such key, nothing deleted (revision stays %d) in %s", r.Key, n.name, res.Revision, ms(time.Since(start)))
			break
		}
		res.Text = fmt.Sprintf("delete %s through %s: deleted, committed at revision %d in %s", r.Key, n.name, res.Revision, ms(time.Since(start)))
	}
	return res, nil
}

// explain says why a request through n failed, in terms of what the page
// shows: a request that gets no answer in time found no leader it could
// reach.
func (p *Playground) explain(n *node, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded") ||
		strings.Contains(err.Error(), "DeadlineExceeded") {
		return fmt.Errorf("no answer through %s within %s: it cannot reach a leader backed by a majority (cut off, or too many members down)", n.name, ms(p.requestTimeout()))
	}
	return fmt.Errorf("through %s: %w", n.name, err)
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// kill stops a member as a crash would leave it: its data dir stays, and a
// restart replays its WAL.
func (p *Playground) kill(name string) (ActionResult, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	n, err := p.find(name)
	if err != nil {
		return ActionResult{}, err
	}
	res := ActionResult{Member: n.name}
	p.mu.Lock()
	m := n.m
	n.m, n.errMsg = nil, "killed"
	p.mu.Unlock()
	if m == nil {
		return res, fmt.Errorf("%s is already down", n.name)
	}
	wasLeader := m.Status().Role == cluster.RoleLeader
	if err := m.Close(); err != nil {
		return res, fmt.Errorf("stop %s: %w", n.name, err)
	}
	p.rewatchNow()
	what := "follower"
	if wasLeader {
		what = "leader"
	}
	res.Text = fmt.Sprintf("killed %s (the %s); its data dir stays for a restart", n.name, what)
	p.hub.Add(Entry{Kind: KindAction, Member: n.name, Text: res.Text})
	return res, nil
}

func (p *Playground) rewatchNow() {
	select {
	case p.rewatch <- struct{}{}:
	default:
	}
}

// restart starts a killed member again from its data dir.
func (p *Playground) restart(ctx context.Context, name string) (ActionResult, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	n, err := p.find(name)
	if err != nil {
		return ActionResult{}, err
	}
	res := ActionResult{Member: n.name}
	p.mu.Lock()
	up := n.m != nil
	p.mu.Unlock()
	if up {
		return res, fmt.Errorf("%s is running: kill it first", n.name)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := cluster.StartMember(sctx, n.cfg)
	if err != nil {
		return res, fmt.Errorf("restart %s: %w", n.name, err)
	}
	n.heardAt.Store(time.Now().UnixMilli())
	p.attach(n, m)
	p.applySlow(m)
	res.Text = fmt.Sprintf("restarted %s from its data dir: it replays its WAL, then catches up from the leader", n.name)
	p.hub.Add(Entry{Kind: KindAction, Member: n.name, Text: res.Text})
	return res, nil
}

// applySlow gives a (re)started member the playground's clock speed.
func (p *Playground) applySlow(m *cluster.Member) {
	p.mu.Lock()
	slow := p.slow
	p.mu.Unlock()
	if slow != 1 {
		_ = m.SetTickInterval(time.Duration(slow) * p.opts.HeartbeatInterval)
	}
}

// isolate cuts a member off from every other, both ways.
func (p *Playground) isolate(name string) (ActionResult, error) {
	n, err := p.find(name)
	if err != nil {
		return ActionResult{}, err
	}
	res := ActionResult{Member: n.name}
	p.mu.Lock()
	if p.groups == nil {
		p.groups = [][]uint64{p.idsLocked()}
	}
	g := p.groupOfLocked(n.id)
	if g >= 0 && len(p.groups[g]) == 1 {
		p.mu.Unlock()
		return res, fmt.Errorf("%s is already cut off from every other member", n.name)
	}
	if g >= 0 {
		p.groups[g] = slices.DeleteFunc(p.groups[g], func(id uint64) bool { return id == n.id })
	}
	p.groups = append(p.groups, []uint64{n.id})
	p.applyGroupsLocked()
	p.mu.Unlock()
	res.Text = fmt.Sprintf("isolated %s: every message to or from it is dropped", n.name)
	p.hub.Add(Entry{Kind: KindAction, Member: n.name, Text: res.Text})
	return res, nil
}

// split partitions the ring into two arcs: the leader and the members after
// it (a minority when the count is odd), and the rest.
func (p *Playground) split() (ActionResult, error) {
	st := p.hub.State()
	p.mu.Lock()
	start := 0
	for i, n := range p.nodes {
		if hexID(n.id) == st.Leader {
			start = i
		}
	}
	count := len(p.nodes)
	if count < 2 {
		p.mu.Unlock()
		return ActionResult{}, errors.New("a split needs two members or more")
	}
	var a, b []uint64
	var an, bn []string
	for k := range count {
		n := p.nodes[(start+k)%count]
		if k < count/2 {
			a, an = append(a, n.id), append(an, n.name)
		} else {
			b, bn = append(b, n.id), append(bn, n.name)
		}
	}
	p.groups = [][]uint64{a, b}
	p.applyGroupsLocked()
	p.mu.Unlock()
	text := fmt.Sprintf("split the network: {%s} | {%s}", strings.Join(an, ", "), strings.Join(bn, ", "))
	p.hub.Add(Entry{Kind: KindAction, Text: text})
	return ActionResult{Text: text}, nil
}

// heal makes every link healthy again.
func (p *Playground) heal() (ActionResult, error) {
	p.mu.Lock()
	p.groups = nil
	p.applyGroupsLocked()
	p.mu.Unlock()
	text := "healed the network: every member reaches every other"
	p.hub.Add(Entry{Kind: KindAction, Text: text})
	return ActionResult{Text: text}, nil
}

// setSlow slows every member's Raft clock by factor (1: real time).
func (p *Playground) setSlow(factor int) (ActionResult, error) {
	if factor < 1 || factor > 20 {
		return ActionResult{}, fmt.Errorf("slow-motion factor %d: give 1 (real time) to 20", factor)
	}
	p.mu.Lock()
	p.slow = factor
	var ms []*cluster.Member
	for _, n := range p.nodes {
		if n.m != nil {
			ms = append(ms, n.m)
		}
	}
	p.mu.Unlock()
	d := time.Duration(factor) * p.opts.HeartbeatInterval
	for _, m := range ms {
		if err := m.SetTickInterval(d); err != nil && !errors.Is(err, context.Canceled) {
			// A member stopping meanwhile is no failure of the switch.
			continue
		}
	}
	text := fmt.Sprintf("real time: a heartbeat every %s, elections after %s to %s without one",
		p.opts.HeartbeatInterval, p.opts.ElectionTimeout, 2*p.opts.ElectionTimeout)
	if factor > 1 {
		et := time.Duration(factor) * p.opts.ElectionTimeout
		text = fmt.Sprintf("slow motion ×%d: a heartbeat every %s, elections after %s to %s without one", factor, d, et, 2*et)
	}
	p.hub.Add(Entry{Kind: KindAction, Text: text})
	return ActionResult{Text: text}, nil
}

// adminClient returns the client of a running member on the largest side of
// any partition, other than except.
func (p *Playground) adminClient(except *node) (*clientv3.Client, *node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	big := -1
	if p.groups != nil {
		big = p.largestGroupLocked()
	}
	var fallback *node
	for _, n := range p.nodes {
		if n == except || n.m == nil {
			continue
		}
		if big < 0 || p.groupOfLocked(n.id) == big {
			return n.cli, n
		}
		fallback = n
	}
	if fallback != nil {
		return fallback.cli, fallback
	}
	return nil, nil
}

// add adds a member, a voter or a learner (member add [--learner], then a
// new member joining with --initial-cluster-state existing), as an
// operator would.
func (p *Playground) add(ctx context.Context, learner bool) (ActionResult, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	cli, via := p.adminClient(nil)
	if cli == nil {
		return ActionResult{}, errors.New("no member is running to add one through")
	}
	var res ActionResult
	peers, err := peerURLs(0, 1)
	if err != nil {
		return res, err
	}
	peerURL := peers[0]
	added, err := p.memberAdd(ctx, cli, peerURL, learner)
	if err != nil {
		if learner && errors.Is(rpctypes.Error(err), rpctypes.ErrTooManyLearners) {
			return res, fmt.Errorf("member add --learner: %w (promote or remove the learner first)", p.explain(via, err))
		}
		return res, fmt.Errorf("member add: %w", p.explain(via, err))
	}
	// Named once added, so a refused add leaves no gap in the names.
	p.mu.Lock()
	name := fmt.Sprintf("m%d", p.next)
	p.next++
	p.mu.Unlock()
	res.Member = name
	var initial []string
	for _, mi := range added.Members {
		switch {
		case mi.ID == added.Member.ID:
			initial = append(initial, name+"="+peerURL)
		case mi.Name != "" && len(mi.PeerURLs) > 0:
			initial = append(initial, mi.Name+"="+mi.PeerURLs[0])
		}
	}
	n := &node{name: name, cfg: p.memberConfig(name, "http://127.0.0.1:0", peerURL)}
	n.cfg.InitialCluster = strings.Join(initial, ",")
	n.cfg.InitialClusterState = cluster.ClusterStateExisting
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	m, err := cluster.StartMember(sctx, n.cfg)
	if err != nil {
		return res, fmt.Errorf("start %s after adding it: %w (tend member remove %x undoes the add)", name, err, added.Member.ID)
	}
	n.heardAt.Store(time.Now().UnixMilli())
	p.attach(n, m)
	p.mu.Lock()
	p.nodes = append(p.nodes, n)
	if p.groups != nil {
		g := p.largestGroupLocked()
		p.groups[g] = append(p.groups[g], n.id)
		p.applyGroupsLocked()
	}
	p.mu.Unlock()
	p.applySlow(m)
	res.Text = fmt.Sprintf("added %s (member add through %s, then it joined and caught up from the leader)", name, via.name)
	if learner {
		res.Text = fmt.Sprintf("added %s as a learner (member add --learner through %s): it receives the log but does not vote; promote it once it has caught up", name, via.name)
	}
	p.hub.Add(Entry{Kind: KindMembers, Member: name, Text: res.Text})
	return res, nil
}

// memberAdd adds a voter (or a learner) with peerURL. etcd's strict
// reconfiguration check refuses a voter while fewer than a majority of the
// voters after the add have been connected for an election timeout (right
// after a start or a restart, say): it tries again for a few election
// timeouts before giving up.
func (p *Playground) memberAdd(ctx context.Context, cli *clientv3.Client, peerURL string, learner bool) (*clientv3.MemberAddResponse, error) {
	p.mu.Lock()
	et := time.Duration(p.slow) * p.opts.ElectionTimeout
	p.mu.Unlock()
	deadline := time.Now().Add(3 * et)
	for {
		actx, cancel := context.WithTimeout(ctx, p.requestTimeout())
		var added *clientv3.MemberAddResponse
		var err error
		if learner {
			added, err = cli.MemberAddAsLearner(actx, []string{peerURL})
		} else {
			added, err = cli.MemberAdd(actx, []string{peerURL})
		}
		cancel()
		if err == nil {
			return added, nil
		}
		retry := errors.Is(rpctypes.Error(err), rpctypes.ErrUnhealthy) || errors.Is(rpctypes.Error(err), rpctypes.ErrMemberNotEnoughStarted)
		if !retry {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (a majority of the members must be up and connected for an election timeout before one is added: restart or heal first)", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// promote makes a learner a voting member (member promote through another
// member). The leader refuses while the learner's log is behind (etcd's
// rule: it must match 90% of the leader's): it tries again for a few
// election timeouts, as the learner catches up.
func (p *Playground) promote(ctx context.Context, name string) (ActionResult, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	n, err := p.find(name)
	if err != nil {
		return ActionResult{}, err
	}
	res := ActionResult{Member: n.name}
	cli, via := p.adminClient(n)
	if cli == nil {
		return res, errors.New("no other member is running to promote it through")
	}
	p.mu.Lock()
	et := time.Duration(p.slow) * p.opts.ElectionTimeout
	p.mu.Unlock()
	deadline := time.Now().Add(3 * et)
	for {
		pctx, cancel := context.WithTimeout(ctx, p.requestTimeout())
		_, err := cli.MemberPromote(pctx, n.id)
		cancel()
		if err == nil {
			break
		}
		switch e := rpctypes.Error(err); {
		case errors.Is(e, rpctypes.ErrMemberNotLearner):
			return res, fmt.Errorf("member promote %s: %w (only a learner can be promoted: add one with \"as learner\" ticked)", n.name, p.explain(via, err))
		case errors.Is(e, rpctypes.ErrMemberLearnerNotReady) && time.Now().Before(deadline):
		default:
			return res, fmt.Errorf("member promote %s: %w", n.name, p.explain(via, err))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	res.Text = fmt.Sprintf("promoted %s to a voting member (member promote through %s): it now counts towards the majority and may campaign", n.name, via.name)
	p.hub.Add(Entry{Kind: KindMembers, Member: n.name, Text: res.Text})
	return res, nil
}

// remove removes a member from the cluster (member remove through another
// member); a running member stops by itself when it applies its removal.
func (p *Playground) remove(ctx context.Context, name string) (ActionResult, error) {
	p.opMu.Lock()
	defer p.opMu.Unlock()
	n, err := p.find(name)
	if err != nil {
		return ActionResult{}, err
	}
	res := ActionResult{Member: n.name}
	cli, via := p.adminClient(n)
	if cli == nil {
		return res, errors.New("no other member is running to remove it through")
	}
	rctx, cancel := context.WithTimeout(ctx, p.requestTimeout())
	defer cancel()
	if _, err := cli.MemberRemove(rctx, n.id); err != nil {
		return res, fmt.Errorf("member remove %s: %w", n.name, p.explain(via, err))
	}
	p.mu.Lock()
	m := n.m
	n.m = nil
	p.nodes = slices.DeleteFunc(p.nodes, func(o *node) bool { return o == n })
	if g := p.groupOfLocked(n.id); g >= 0 {
		p.groups[g] = slices.DeleteFunc(p.groups[g], func(id uint64) bool { return id == n.id })
		if len(p.groups[g]) == 0 {
			p.groups = slices.Delete(p.groups, g, g+1)
		}
		if len(p.groups) < 2 {
			p.groups = nil
		}
		p.applyGroupsLocked()
	}
	p.mu.Unlock()
	if m != nil {
		// It stops by itself once it applies its removal; a member cut
		// off may never hear of it, so wait a little, then close it.
		select {
		case <-m.Done():
		case <-time.After(5 * time.Second):
		}
		m.Close()
	}
	n.cli.Close()
	p.rewatchNow()
	res.Text = fmt.Sprintf("removed %s (member remove through %s)", n.name, via.name)
	p.hub.Add(Entry{Kind: KindMembers, Member: n.name, Text: res.Text})
	return res, nil
}
