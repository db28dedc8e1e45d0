package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
)

// FleetConfig describes one fleet run: Agents simulated agents, each doing
// against the store what a tend agent with a status block does, and
// Rollouts changes that every one of them must apply.
type FleetConfig struct {
	Endpoints   []string
	DialTimeout time.Duration
	// Username and Password, when set, authenticate every connection.
	Username, Password string
	// TLS, when set, is the connections' TLS (https:// endpoints).
	TLS *tls.Config
	// Agents share Conns gRPC connections (zero: one each, as hosts do).
	Agents, Conns int
	Rollouts      int
	// TTL is each agent's status lease (zero: the status block's default),
	// kept alive all run long.
	TTL time.Duration
	// ValSize is the size of the changed value.
	ValSize int
	// RolloutTimeout bounds each rollout (zero: one minute).
	RolloutTimeout time.Duration
	// KillLeaderBefore, when not zero, is the rollout before which the
	// leader's member is killed with Kill(i), i its index in Endpoints
	// (which must then list every member): the agents on it must move to
	// the others and still apply every rollout.
	KillLeaderBefore int
	Kill             func(i int) error
}

func (c *FleetConfig) validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("no endpoints (set --endpoints)")
	case c.Agents < 1:
		return fmt.Errorf("--agents %d: need at least 1", c.Agents)
	case c.Rollouts < 1:
		return fmt.Errorf("--rollouts %d: need at least 1", c.Rollouts)
	case c.Conns < 0:
		return fmt.Errorf("--conns %d: cannot be negative (0 gives each agent its own)", c.Conns)
	case c.TTL < 0 || (c.TTL > 0 && c.TTL < 2*time.Second):
		return fmt.Errorf("--ttl %s: give 2s or more (0 for the status block's default, 30s)", c.TTL)
	case c.ValSize < 0:
		return fmt.Errorf("--val-size %d: cannot be negative", c.ValSize)
	case c.KillLeaderBefore < 0 || c.KillLeaderBefore > c.Rollouts:
		return fmt.Errorf("--kill-leader-before %d: give a rollout from 1 to --rollouts %d (0: kill nothing)", c.KillLeaderBefore, c.Rollouts)
	case c.KillLeaderBefore > 0 && (c.Kill == nil || len(c.Endpoints) < 2):
		return fmt.Errorf("--kill-leader-before needs every member's endpoint and --pids, one per endpoint")
	}
	if c.Conns == 0 || c.Conns > c.Agents {
		c.Conns = c.Agents
	}
	if c.TTL == 0 {
		c.TTL = 30 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.RolloutTimeout == 0 {
		c.RolloutTimeout = time.Minute
	}
	return nil
}

// FleetReport is the outcome of a fleet run. Deliver is put start → event
// at an agent, Status is put start → that agent's status put acknowledged,
// each over every agent and rollout; Rollout is put start → the last
// agent's status seen by a watcher of the status prefix (what tend fleet
// status --wait waits for), over the rollouts.
type FleetReport struct {
	Agents   int `json:"agents"`
	Conns    int `json:"conns"`
	Rollouts int `json:"rollouts"`
	// Killed is the endpoint of the leader killed before rollout
	// KillLeaderBefore.
	Killed string `json:"killed,omitempty"`
	// Join is how long all agents took to connect, grant their lease,
	// start its keep-alive, create their watch and publish a first status.
	Join    time.Duration `json:"join_ns"`
	Deliver Percentiles   `json:"deliver"`
	Status  Percentiles   `json:"status"`
	Rollout Percentiles   `json:"rollout"`
	// KeepAlives counts the keep-alive responses the agents received.
	KeepAlives int64 `json:"keep_alives"`
	// Rewatches counts the agents' watches made again after one ended
	// (its member died, or lost its leader); Retries the status puts
	// tried again after one failed.
	Rewatches int64 `json:"rewatches"`
	Retries   int64 `json:"retries"`
	// Errors counts lost keep-alives; FirstError is the first of them.
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// Percentiles summarise a set of durations.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func percentiles(d []time.Duration) Percentiles {
	slices.Sort(d)
	n := len(d)
	if n == 0 {
		return Percentiles{}
	}
	return Percentiles{N: n, P50: pct(d, 0.5), P99: pct(d, 0.99), Max: d[n-1]}
}

// Print writes the report as a small table.
func (r FleetReport) Print(w io.Writer) {
	fmt.Fprintf(w, "%-7s %6s %8s %9s  %-28s %-28s %-20s %10s %7s\n",
		"agents", "conns", "rollouts", "join", "deliver p50/p99/max", "status p50/p99/max", "rollout p50/max", "keepalive", "errors")
	three := func(p Percentiles) string {
		return fmt.Sprintf("%s/%s/%s", round(p.P50), round(p.P99), round(p.Max))
	}
	fmt.Fprintf(w, "%-7d %6d %8d %9s  %-28s %-28s %-20s %10d %7d\n",
		r.Agents, r.Conns, r.Rollouts, round(r.Join), three(r.Deliver), three(r.Status),
		fmt.Sprintf("%s/%s", round(r.Rollout.P50), round(r.Rollout.Max)), r.KeepAlives, r.Errors)
	if r.Killed != "" {
		fmt.Fprintf(w, "killed the leader at %s before a rollout\n", r.Killed)
	}
	if r.Rewatches > 0 || r.Retries > 0 {
		fmt.Fprintf(w, "%d watches made again after one ended, %d status puts tried again\n", r.Rewatches, r.Retries)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// fleetRun is the shared state of one run.
type fleetRun struct {
	c          FleetConfig
	configKey  string
	statusPref string

	mu       sync.Mutex
	recorded *sync.Cond // broadcast when a sample or an error is added
	deliver  []time.Duration
	status   []time.Duration
	errs     int
	firstErr error

	keepAlives atomic.Int64
	rewatches  atomic.Int64
	retries    atomic.Int64
}

func (r *fleetRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.recorded.Broadcast()
}

// waitSamples returns once n status puts were acknowledged to the agents
// that made them (a watcher can see a put before its acknowledgement
// reaches the agent), an agent failed, or limit passes.
func (r *fleetRun) waitSamples(ctx context.Context, n int, limit time.Duration) error {
	return waitCond(ctx, r.recorded, limit, func() (bool, error) { return len(r.status) >= n, r.firstErr },
		func() error {
			return fmt.Errorf("%d of %d status puts acknowledged within %s", len(r.status), n, limit)
		})
}

// waitCond waits on cond, whose lock it takes, until done reports true or
// an error, or limit passes (then it returns late's error, under the lock).
func waitCond(ctx context.Context, cond *sync.Cond, limit time.Duration, done func() (bool, error), late func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		cond.L.Lock()
		defer cond.L.Unlock()
		cond.Broadcast()
	})
	defer stop()
	cond.L.Lock()
	defer cond.L.Unlock()
	for {
		ok, err := done()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return late()
		}
		cond.Wait()
	}
}

// Fleet starts c.Agents simulated agents on a fresh prefix. Each, like a
// tend agent with a status block and one template:
//  1. grants a lease of c.TTL and keeps it alive;
//  2. watches the prefix's config key (requiring a leader);
//  3. publishes an agent.HostStatus under the prefix's status/ folder,
//     attached to its lease, first at the revision it started at and then
//     at each change it receives.
//
// Then it puts the config key c.Rollouts times, each time waiting until a
// watcher of the status folder has seen every agent publish the change's
// revision. The agents' leases are revoked and the prefix deleted at the
// end.
func Fleet(ctx context.Context, c FleetConfig) (FleetReport, error) {
	if err := c.validate(); err != nil {
		return FleetReport{}, err
	}
	prefix := fmt.Sprintf("/bench-fleet/%016x/", rand.Uint64())
	r := &fleetRun{c: c, configKey: prefix + "config", statusPref: prefix + "status/"}
	r.recorded = sync.NewCond(&r.mu)
	rep := FleetReport{Agents: c.Agents, Conns: c.Conns, Rollouts: c.Rollouts}

	clis, closeAll, err := connect(Config{Endpoints: c.Endpoints, Conns: c.Conns, DialTimeout: c.DialTimeout,
		Username: c.Username, Password: c.Password, TLS: c.TLS})
	if err != nil {
		return rep, err
	}
	defer closeAll()
	driver := clis[0]
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		driver.Delete(dctx, prefix, clientv3.WithPrefix())
	}()

	// The observer counts, per revision, the agents that published it.
	obs, err := newFleetObserver(ctx, driver, r.statusPref)
	if err != nil {
		return rep, err
	}
	defer obs.stop()

	actx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopAgents()
		wg.Wait()
	}()
	start := time.Now()
	joined := make(chan error, c.Agents)
	// At most 64 agents join at a time: a fleet starting at once would
	// measure the client's own dialing, not the store.
	gate := make(chan struct{}, 64)
	for i := range c.Agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.agent(actx, clis[i%len(clis)], i, gate, joined)
		}()
	}
	for range c.Agents {
		select {
		case err := <-joined:
			if err != nil {
				return rep, err
			}
		case <-ctx.Done():
			return rep, fmt.Errorf("%d agents joining: %w", c.Agents, ctx.Err())
		}
	}
	rep.Join = time.Since(start)

	var rollouts []time.Duration
	val := make([]byte, max(8, c.ValSize))
	for n := range c.Rollouts {
		if n+1 == c.KillLeaderBefore {
			lead, err := findLeader(ctx, driver, c.Endpoints)
			if err != nil {
				return r.finish(rep, rollouts), err
			}
			if err := c.Kill(lead); err != nil {
				return r.finish(rep, rollouts), fmt.Errorf("kill the leader at %s: %w", c.Endpoints[lead], err)
			}
			rep.Killed = c.Endpoints[lead]
		}
		binary.BigEndian.PutUint64(val, uint64(time.Now().UnixNano()))
		t0 := time.Now()
		// Put as a CI job would: again until acknowledged (a new leader
		// may still be on its way), within the rollout's time.
		var resp *clientv3.PutResponse
		pctx, cancel := context.WithTimeout(ctx, c.RolloutTimeout)
		for {
			var err error
			if resp, err = driver.Put(pctx, r.configKey, string(val)); err == nil {
				break
			}
			if !sleepCtx(pctx, retryPause) {
				cancel()
				return r.finish(rep, rollouts), fmt.Errorf("rollout %d: put %s: %w", n+1, r.configKey, err)
			}
			r.retries.Add(1)
		}
		cancel()
		rev := resp.Header.Revision
		if err := obs.wait(ctx, rev, c.Agents, c.RolloutTimeout); err != nil {
			rep = r.finish(rep, rollouts)
			if rep.FirstError != "" {
				err = fmt.Errorf("%w (%d agent errors, first: %s)", err, rep.Errors, rep.FirstError)
			}
			return rep, fmt.Errorf("rollout %d (revision %d): %w", n+1, rev, err)
		}
		rollouts = append(rollouts, time.Since(t0))
		if err := r.waitSamples(ctx, c.Agents*(n+1), c.RolloutTimeout); err != nil {
			return r.finish(rep, rollouts), fmt.Errorf("rollout %d (revision %d): %w", n+1, rev, err)
		}
	}
	rep = r.finish(rep, rollouts)
	if rep.Errors > 0 {
		return rep, fmt.Errorf("%d errors, first: %s", rep.Errors, rep.FirstError)
	}
	return rep, nil
}

func (r *fleetRun) finish(rep FleetReport, rollouts []time.Duration) FleetReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Deliver = percentiles(r.deliver)
	rep.Status = percentiles(r.status)
	rep.Rollout = percentiles(rollouts)
	rep.KeepAlives = r.keepAlives.Load()
	rep.Rewatches, rep.Retries = r.rewatches.Load(), r.retries.Load()
	rep.Errors = r.errs
	if r.firstErr != nil {
		rep.FirstError = r.firstErr.Error()
	}
	return rep
}

// agent is simulated agent i: it joins (reporting on joined), then
// publishes each change it receives until ctx ends, and revokes its lease.
func (r *fleetRun) agent(ctx context.Context, cli *clientv3.Client, i int, gate chan struct{}, joined chan<- error) {
	host := fmt.Sprintf("agent-%05d", i)
	key := r.statusPref + host
	gate <- struct{}{}
	started := time.Now()
	lease, ch, rev, err := r.join(ctx, cli, host, key, started)
	<-gate
	joined <- err
	if err != nil {
		return
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cli.Revoke(rctx, lease)
	}()
	kctx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	kas, err := cli.KeepAlive(kctx, lease)
	if err != nil {
		r.fail(fmt.Errorf("%s: keep lease %x alive: %w", host, lease, err))
		return
	}
	go func() {
		for range kas {
			r.keepAlives.Add(1)
		}
		if ctx.Err() == nil {
			r.fail(fmt.Errorf("%s: the keep-alive of lease %x ended", host, lease))
		}
	}()
	// As a tend agent does: a watch that ends (its member died, or lost
	// its leader) is made again from the next revision, and a status put
	// that fails is tried again until it is acknowledged.
	for {
		for resp := range ch {
			now := time.Now()
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			ev := resp.Events[len(resp.Events)-1]
			rev = ev.Kv.ModRevision
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(ev.Kv.Value)))
			if !r.publishUntilAcked(ctx, cli, key, host, started, lease, rev) {
				return
			}
			acked := time.Now()
			r.mu.Lock()
			r.deliver = append(r.deliver, now.Sub(sent))
			r.status = append(r.status, acked.Sub(sent))
			r.recorded.Broadcast()
			r.mu.Unlock()
		}
		if !sleepCtx(ctx, retryPause) {
			return
		}
		r.rewatches.Add(1)
		ch = cli.Watch(clientv3.WithRequireLeader(ctx), r.configKey, clientv3.WithRev(rev+1))
	}
}

// retryPause is how long a simulated agent waits before it watches again
// or retries a status put.
const retryPause = 100 * time.Millisecond

// publishUntilAcked publishes rev until a put is acknowledged; false when
// ctx ended first.
func (r *fleetRun) publishUntilAcked(ctx context.Context, cli *clientv3.Client, key, host string, started time.Time, lease clientv3.LeaseID, rev int64) bool {
	for {
		if err := r.publish(ctx, cli, key, host, started, lease, rev); err == nil {
			return true
		}
		if !sleepCtx(ctx, retryPause) {
			return false
		}
		r.retries.Add(1)
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// join grants the agent's lease, starts its watch and publishes its first
// status, at the revision the watch starts after.
func (r *fleetRun) join(ctx context.Context, cli *clientv3.Client, host, key string, started time.Time) (clientv3.LeaseID, clientv3.WatchChan, int64, error) {
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	g, err := cli.Grant(jctx, int64(r.c.TTL/time.Second))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("%s: grant a lease: %w", host, err)
	}
	ch := cli.Watch(clientv3.WithRequireLeader(ctx), r.configKey, clientv3.WithCreatedNotify(), clientv3.WithRev(g.ResponseHeader.Revision+1))
	select {
	case resp, ok := <-ch:
		if !ok || !resp.Created {
			return 0, nil, 0, fmt.Errorf("%s: watch %s: %v", host, r.configKey, resp.Err())
		}
	case <-jctx.Done():
		return 0, nil, 0, fmt.Errorf("%s: watch %s: %w", host, r.configKey, jctx.Err())
	}
	if err := r.publish(jctx, cli, key, host, started, g.ID, g.ResponseHeader.Revision); err != nil {
		return 0, nil, 0, fmt.Errorf("%s: first status: %w", host, err)
	}
	return g.ID, ch, g.ResponseHeader.Revision, nil
}

// publish puts the agent's status at rev, as a tend agent's status block
// does.
func (r *fleetRun) publish(ctx context.Context, cli *clientv3.Client, key, host string, started time.Time, lease clientv3.LeaseID, rev int64) error {
	now := time.Now()
	v, err := json.Marshal(agent.HostStatus{
		Host: host, StartedAt: started, UpdatedAt: now,
		Templates: []agent.Status{{Template: "app", Destination: "/etc/app/app.conf", Revision: rev, AppliedAt: now, Outcome: "applied"}},
	})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = cli.Put(pctx, key, string(v), clientv3.WithLease(lease))
	return err
}

// fleetObserver watches the status folder and keeps each agent's
// published revision.
type fleetObserver struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changed *sync.Cond
	revs    map[string]int64
	// reached counts the agents in revs at target or later, kept as
	// events come so that a wait costs nothing per event.
	target, reached int64
	err             error
}

// setLocked records host at rev (deleted when rev is 0).
func (o *fleetObserver) setLocked(host string, rev int64) {
	if old, ok := o.revs[host]; ok && old >= o.target {
		o.reached--
	}
	if rev == 0 {
		delete(o.revs, host)
		return
	}
	o.revs[host] = rev
	if rev >= o.target {
		o.reached++
	}
}

func newFleetObserver(ctx context.Context, cli *clientv3.Client, prefix string) (*fleetObserver, error) {
	wctx, cancel := context.WithCancel(ctx)
	o := &fleetObserver{cancel: cancel, done: make(chan struct{}), revs: map[string]int64{}}
	o.changed = sync.NewCond(&o.mu)
	ch := cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp, ok := <-ch; !ok || !resp.Created {
		cancel()
		return nil, fmt.Errorf("watch %s: %v", prefix, resp.Err())
	}
	go func() {
		defer close(o.done)
		// A watch that ends (its member died, or lost its leader) is made
		// again from the revision after the last response.
		next := int64(0)
		for {
			for resp := range ch {
				if resp.Err() != nil {
					break
				}
				next = max(next, resp.Header.Revision+1)
				o.apply(prefix, resp.Events)
			}
			if !sleepCtx(wctx, retryPause) {
				break
			}
			ch = cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(next))
		}
		o.mu.Lock()
		if o.err == nil {
			o.err = errors.New("status watch ended")
		}
		o.changed.Broadcast()
		o.mu.Unlock()
	}()
	return o, nil
}

// apply records the agents' statuses in evs.
func (o *fleetObserver) apply(prefix string, evs []*clientv3.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ev := range evs {
		host := strings.TrimPrefix(string(ev.Kv.Key), prefix)
		if ev.Type == mvccpb.DELETE {
			o.setLocked(host, 0)
			continue
		}
		var hs agent.HostStatus
		if err := json.Unmarshal(ev.Kv.Value, &hs); err != nil || len(hs.Templates) != 1 {
			o.err = fmt.Errorf("status of %s is not an agent's status: %q", host, ev.Kv.Value)
			continue
		}
		o.setLocked(host, max(hs.Templates[0].Revision, 1))
	}
	o.changed.Broadcast()
}

// wait returns once n agents have published rev or later, or limit passes.
func (o *fleetObserver) wait(ctx context.Context, rev int64, n int, limit time.Duration) error {
	o.mu.Lock()
	o.target, o.reached = rev, 0
	for _, r := range o.revs {
		if r >= rev {
			o.reached++
		}
	}
	o.mu.Unlock()
	return waitCond(ctx, o.changed, limit, func() (bool, error) { return o.reached >= int64(n), o.err },
		func() error {
			return fmt.Errorf("%d of %d agents published revision %d within %s", o.reached, n, rev, limit)
		})
}

func (o *fleetObserver) stop() {
	o.cancel()
	<-o.done
}
