package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent/config"
)

// HostStatus is what an agent publishes under its status key, as JSON:
// which revision each of its files is at and how the last attempt went,
// and whether its services are registered. tend fleet status reads it.
type HostStatus struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// StartedAt is when the agent started; UpdatedAt when any of the
	// statuses below last changed.
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Templates lists every configured template, in configuration order;
	// one not attempted yet has the outcome "pending" and revision 0.
	Templates []Status        `json:"templates"`
	Services  []ServiceStatus `json:"services,omitempty"`
}

// maxStatusError bounds each error in a published status, so that a
// check printing pages of output does not make the entry large.
const maxStatusError = 1024

// HostStatus returns the agent's status as it publishes it (UpdatedAt is
// left zero: the publisher sets it).
func (a *Agent) HostStatus() HostStatus {
	host, _ := os.Hostname()
	cfg := a.Config()
	a.mu.Lock()
	defer a.mu.Unlock()
	hs := HostStatus{Host: host, PID: os.Getpid(), StartedAt: a.started, Templates: []Status{}}
	for _, t := range cfg.Templates {
		s, ok := a.status[t.Name]
		if !ok {
			s = Status{Template: t.Name, Destination: t.Destination, Outcome: "pending"}
		}
		s.Error = truncate(s.Error, maxStatusError)
		hs.Templates = append(hs.Templates, s)
	}
	for _, svc := range cfg.Services {
		if s, ok := a.services[svc.Name]; ok {
			s.Error = truncate(s.Error, maxStatusError)
			hs.Services = append(hs.Services, s)
		}
	}
	return hs
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// How often the publisher writes: a change is published once no other came
// for statusQuiet, but no later than statusMaxDelay after the first one,
// and never sooner than statusMinGap after the previous write. A storm of
// changes thus makes at most 1/statusMinGap writes a second, and each
// change is in the store within about statusMaxDelay.
const (
	statusQuiet    = 100 * time.Millisecond
	statusMaxDelay = time.Second
	statusMinGap   = 250 * time.Millisecond
)

// publisher keeps the agent's HostStatus under the status key. Its
// goroutine, as numbered steps:
//
//  1. Take a snapshot of the statuses at once, and again each time one is
//     set; a snapshot that differs from the last one (UpdatedAt aside) is
//     due for writing, debounced (statusQuiet, statusMaxDelay,
//     statusMinGap).
//  2. To write: without a lease, grant one of TTL and keep it alive; put
//     the key with the lease. A failed write is retried with a doubling
//     backoff; the last snapshot stays in hand meanwhile, so what the store
//     gets when it is back is the newest one.
//  3. When the keep-alive stream ends (the lease expired while the store
//     was out of reach, or was revoked by someone else), or a put says the
//     lease is gone: forget the lease and write again (step 2).
//  4. On stop: revoke the lease, bounded by the store timeout, so the
//     entry goes now rather than TTL later.
//
// It runs beside the loop and never blocks it: the loop only signals
// Agent.changed, and a failed write is logged and retried here.
type publisher struct {
	a       *Agent
	cfg     *config.Status
	log     *slog.Logger
	timeout time.Duration // bounds each store call
	cancel  context.CancelFunc
	done    chan struct{}
	why     string // why it was stopped; set before cancel
}

// startPublisher starts publishing under s until stop. It does not end
// with ctx: the loop stops it, with its reason, as Run ends.
func (l *loop) startPublisher(ctx context.Context, s *config.Status) *publisher {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &publisher{
		a:       l.a,
		cfg:     s,
		log:     l.log.With("status-key", s.Key),
		timeout: l.readTimeout(),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(p.done)
		p.run(pctx)
	}()
	return p
}

// stop revokes the lease and waits for the goroutine to end.
func (p *publisher) stop(why string) {
	p.why = why
	p.cancel()
	<-p.done
}

func (p *publisher) run(ctx context.Context) {
	var (
		lease   clientv3.LeaseID // 0: none
		alive   <-chan *clientv3.LeaseKeepAliveResponse
		stopKA  context.CancelFunc
		last    []byte    // the last snapshot, UpdatedAt zero, to compare
		value   []byte    // the last snapshot as published
		written = false   // the store holds value under lease
		first   time.Time // the first and latest change not written yet
		latest  time.Time
		wrote   time.Time // the last write
		fails   int
		retryAt time.Time
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	dropLease := func() {
		if stopKA != nil {
			stopKA()
		}
		lease, alive, stopKA, written = 0, nil, nil, false
	}
	defer func() {
		if lease == 0 {
			return
		}
		id := lease
		dropLease()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		defer cancel()
		if _, err := p.a.client.Revoke(cctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			p.log.Warn("fleet status not revoked; it goes when its lease expires", "reason", p.why,
				"lease", fmt.Sprintf("%x", int64(id)), "expires-within", p.cfg.TTL, "error", err)
			return
		}
		p.log.Info("fleet status revoked", "reason", p.why, "lease", fmt.Sprintf("%x", int64(id)))
	}()
	snapshot := func(now time.Time) {
		hs := p.a.HostStatus()
		cmp, err := json.Marshal(hs)
		if err != nil {
			p.log.Error("encode fleet status", "error", err)
			return
		}
		if bytes.Equal(cmp, last) {
			return
		}
		last = cmp
		hs.UpdatedAt = now
		value, _ = json.Marshal(hs)
		if written || first.IsZero() {
			first = now
		}
		latest, written = now, false
	}
	write := func(now time.Time) {
		cctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		err := p.put(cctx, &lease, value)
		if err == nil {
			if alive == nil {
				kactx, stop := context.WithCancel(ctx)
				alive, err = p.a.client.KeepAlive(kactx, lease)
				if err != nil {
					stop()
					err = fmt.Errorf("keep lease %x alive: %w", int64(lease), err)
				} else {
					stopKA = stop
					p.log.Info("fleet status published", "lease", fmt.Sprintf("%x", int64(lease)), "ttl", p.cfg.TTL)
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				dropLease()
			}
			fails++
			wait := backoff(fails)
			retryAt = now.Add(wait)
			p.log.Warn("fleet status not published; retrying", "error", err, "attempt", fails, "retry-in", wait)
			return
		}
		if fails > 0 {
			p.log.Info("fleet status published again", "attempts", fails+1)
		}
		fails, written, wrote, first = 0, true, now, time.Time{}
		p.log.Debug("fleet status written", "bytes", len(value))
	}
	snapshot(time.Now())
	for {
		if !written {
			due := retryAt
			if fails == 0 {
				due = latest.Add(statusQuiet)
				if m := first.Add(statusMaxDelay); m.Before(due) {
					due = m
				}
				if g := wrote.Add(statusMinGap); g.After(due) {
					due = g
				}
			}
			timer.Reset(max(time.Until(due), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-p.a.changed:
			snapshot(time.Now())
		case _, ok := <-alive:
			if ok {
				continue
			}
			p.log.Warn("fleet status lease lost; publishing again", "lease", fmt.Sprintf("%x", int64(lease)))
			dropLease()
			now := time.Now()
			first, latest = now, now
		case <-timer.C:
			if !written {
				write(time.Now())
			}
		}
	}
}

// put writes value under *lease, granting a lease of the TTL first when
// *lease is 0 (and setting it).
func (p *publisher) put(ctx context.Context, lease *clientv3.LeaseID, value []byte) error {
	if *lease == 0 {
		g, err := p.a.client.Grant(ctx, int64(p.cfg.TTL/time.Second))
		if err != nil {
			return fmt.Errorf("grant lease of %s: %w", p.cfg.TTL, err)
		}
		*lease = g.ID
	}
	if _, err := p.a.client.Put(ctx, p.cfg.Key, string(value), clientv3.WithLease(*lease)); err != nil {
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			return fmt.Errorf("put %s with lease %x: %w (grant the agent's role write on the status key, e.g. tend role grant-permission ROLE write %s)", p.cfg.Key, int64(*lease), err, p.cfg.Key)
		}
		return fmt.Errorf("put %s with lease %x: %w", p.cfg.Key, int64(*lease), err)
	}
	return nil
}

// syncStatus makes the publisher match the configuration's status block:
// started, kept (unchanged block), replaced (changed) or stopped (removed).
func (l *loop) syncStatus(ctx context.Context) {
	want := l.cfg.Status
	if p := l.status; p != nil {
		if want != nil && want.Key == p.cfg.Key && want.TTL == p.cfg.TTL {
			return
		}
		p.stop("configuration changed")
		l.status = nil
	}
	if want != nil {
		l.status = l.startPublisher(ctx, want)
	}
}

// stopStatus revokes the published status and waits for the publisher.
func (l *loop) stopStatus() {
	if l.status != nil {
		l.status.stop("agent stopping")
		l.status = nil
	}
}
