package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent/config"
)

// ServiceStatus is where one service's registration stands.
type ServiceStatus struct {
	Service string `json:"service"`
	Key     string `json:"key"`
	// Healthy is the outcome of the last check (true without a check).
	Healthy bool `json:"healthy"`
	// Registered says the key is in the store with Lease kept alive.
	Registered bool  `json:"registered"`
	Lease      int64 `json:"lease,omitempty"`
	// Error is the last failed check or registration attempt, if the
	// service is not registered because of it.
	Error string `json:"error,omitempty"`
}

// Services returns the status of every configured service, sorted by name.
func (a *Agent) Services() []ServiceStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]ServiceStatus, 0, len(a.services))
	for _, s := range a.services {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

func (a *Agent) setServiceStatus(s ServiceStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.services[s.Service] = s
	registered := 0.0
	if s.Registered {
		registered = 1
	}
	a.metrics.servicesRegistered.WithLabelValues(s.Service).Set(registered)
	a.notifyLocked()
}

func (a *Agent) dropServiceStatus(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.services, name)
	a.metrics.servicesRegistered.DeleteLabelValues(name)
	a.notifyLocked()
}

// registrar keeps one service registered while its check passes. Its
// goroutine, as numbered steps:
//
//  1. Probe the check at once, then every Interval; without a check the
//     service counts as healthy.
//  2. While healthy and not registered: grant a lease of TTL, put Key =
//     Value with it, and keep the lease alive. A failed attempt is retried
//     with a doubling backoff.
//  3. When the keep-alive stream ends (the lease expired while the store
//     was out of reach, was revoked by someone else, or is unknown to a
//     store that lost it), register again at once: a new lease, the key put
//     again.
//  4. When the check fails: revoke the lease, so the key goes now. When it
//     passes again: step 2.
//  5. On stop: revoke the lease, bounded by the store timeout, so the key
//     goes now rather than TTL later.
type registrar struct {
	a       *Agent
	svc     *config.Service
	log     *slog.Logger
	timeout time.Duration // bounds each store call
	cancel  context.CancelFunc
	done    chan struct{}
	// why is the reason the registrar was stopped, for the log; stop sets
	// it before cancelling, run reads it after.
	why string
}

// startRegistrar starts keeping s registered until stop. It does not end
// with ctx: the loop stops every registrar, with its reason, as Run ends.
func (l *loop) startRegistrar(ctx context.Context, s *config.Service) *registrar {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &registrar{
		a:       l.a,
		svc:     s,
		log:     l.log.With("service", s.Name, "key", s.Key),
		timeout: l.readTimeout(),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		r.run(rctx)
	}()
	return r
}

// stop deregisters the service and waits for the goroutine to end.
func (r *registrar) stop(why string) {
	r.why = why
	r.cancel()
	<-r.done
}

// registration is a lease the registrar holds, with the key put under it.
type registration struct {
	lease  clientv3.LeaseID
	alive  <-chan *clientv3.LeaseKeepAliveResponse
	stopKA context.CancelFunc
}

func (r *registrar) run(ctx context.Context) {
	st := ServiceStatus{Service: r.svc.Name, Key: r.svc.Key, Healthy: r.svc.Check == nil}
	r.a.setServiceStatus(st)
	var (
		reg      *registration
		aliveC   <-chan *clientv3.LeaseKeepAliveResponse
		probeT   *time.Timer
		probeC   <-chan time.Time
		retry    *time.Timer
		retryC   <-chan time.Time
		failures int
	)
	if r.svc.Check != nil {
		probeT = time.NewTimer(0)
		defer probeT.Stop()
		probeC = probeT.C
	}
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	register := func() {
		var err error
		reg, err = r.register(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait := backoff(failures)
			r.log.Warn("service not registered; retrying", "error", err, "attempt", failures, "retry-in", wait)
			st.Registered, st.Lease, st.Error = false, 0, err.Error()
			r.a.setServiceStatus(st)
			if retry == nil {
				retry = time.NewTimer(wait)
			} else {
				retry.Reset(wait)
			}
			retryC = retry.C
			return
		}
		failures, retryC, aliveC = 0, nil, reg.alive
		r.log.Info("service registered", "lease", fmt.Sprintf("%x", int64(reg.lease)), "ttl", r.svc.TTL)
		st.Registered, st.Lease, st.Error = true, int64(reg.lease), ""
		r.a.setServiceStatus(st)
	}
	deregister := func(why string) {
		if reg == nil {
			return
		}
		err := r.revoke(ctx, reg)
		if err != nil {
			r.log.Warn("service deregistration failed; the key goes when its lease expires", "reason", why,
				"lease", fmt.Sprintf("%x", int64(reg.lease)), "expires-within", r.svc.TTL, "error", err)
		} else {
			r.log.Info("service deregistered", "reason", why, "lease", fmt.Sprintf("%x", int64(reg.lease)))
		}
		reg, aliveC = nil, nil
		st.Registered, st.Lease = false, 0
		r.a.setServiceStatus(st)
	}
	if st.Healthy {
		register()
	}
	for {
		select {
		case <-ctx.Done():
			deregister(r.why)
			return
		case <-retryC:
			retryC = nil
			if st.Healthy && reg == nil {
				register()
			}
		case _, ok := <-aliveC:
			if ok {
				continue
			}
			reg.stopKA()
			r.log.Warn("service lease lost; registering again", "lease", fmt.Sprintf("%x", int64(reg.lease)))
			reg, aliveC = nil, nil
			st.Registered, st.Lease = false, 0
			r.a.setServiceStatus(st)
			if st.Healthy && retryC == nil {
				register()
			}
		case <-probeC:
			c := r.svc.Check
			pctx, cancel := context.WithTimeout(ctx, c.Timeout)
			err := probeService(pctx, c)
			cancel()
			if ctx.Err() != nil {
				continue // stopping: the next select deregisters
			}
			probeT.Reset(c.Interval)
			switch {
			case err == nil && !st.Healthy:
				r.log.Info("service check passed")
			case err != nil && (st.Healthy || st.Error == ""):
				r.log.Warn("service check failed", "error", err)
			}
			st.Healthy = err == nil
			if err != nil {
				st.Error = err.Error()
				r.a.setServiceStatus(st)
				deregister("check failed")
				continue
			}
			if reg == nil && retryC == nil {
				st.Error = ""
				register()
			}
			r.a.setServiceStatus(st)
		}
	}
}

func probeService(ctx context.Context, c *config.ServiceCheck) error {
	return probe(ctx, c.HTTP, c.ExpectStatus, c.Command)
}

// register grants a lease of the service's TTL, puts the key with it and
// starts keeping it alive.
func (r *registrar) register(ctx context.Context) (*registration, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	g, err := r.a.client.Grant(cctx, int64(r.svc.TTL/time.Second))
	if err != nil {
		return nil, fmt.Errorf("grant lease of %s: %w", r.svc.TTL, err)
	}
	reg := &registration{lease: g.ID}
	if _, err := r.a.client.Put(cctx, r.svc.Key, r.svc.Value, clientv3.WithLease(g.ID)); err != nil {
		r.revoke(ctx, reg)
		return nil, fmt.Errorf("put %s with lease %x: %w", r.svc.Key, int64(g.ID), err)
	}
	kactx, stop := context.WithCancel(ctx)
	alive, err := r.a.client.KeepAlive(kactx, g.ID)
	if err != nil {
		stop()
		r.revoke(ctx, reg)
		return nil, fmt.Errorf("keep lease %x alive: %w", int64(g.ID), err)
	}
	reg.alive, reg.stopKA = alive, stop
	return reg, nil
}

// revoke stops keeping reg's lease alive and revokes it, which deletes the
// key. It runs on stop too, so it does not use ctx's cancellation.
func (r *registrar) revoke(ctx context.Context, reg *registration) error {
	if reg.stopKA != nil {
		reg.stopKA()
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	_, err := r.a.client.Revoke(cctx, reg.lease)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("revoke lease %x: %w", int64(reg.lease), err)
	}
	return nil
}

// syncServices makes the running registrars match the configuration: an
// unchanged service keeps its registration; a changed one is deregistered
// and registered anew; a removed one is deregistered.
func (l *loop) syncServices(ctx context.Context) {
	want := map[string]*config.Service{}
	for _, s := range l.cfg.Services {
		want[s.Name] = s
	}
	for name, r := range l.services {
		if s := want[name]; s != nil && sameService(s, r.svc) {
			continue
		}
		r.stop("configuration changed")
		delete(l.services, name)
		l.a.dropServiceStatus(name)
	}
	for _, s := range l.cfg.Services {
		if l.services[s.Name] == nil {
			l.services[s.Name] = l.startRegistrar(ctx, s)
		}
	}
}

// stopServices deregisters every service and waits for the registrars.
func (l *loop) stopServices() {
	for name, r := range l.services {
		r.stop("agent stopping")
		delete(l.services, name)
	}
}

func sameService(a, b *config.Service) bool {
	x, y := *a, *b
	x.Pos, y.Pos = "", ""
	return reflect.DeepEqual(x, y)
}
