package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// FailoverConfig describes one leader-loss measurement.
type FailoverConfig struct {
	// Endpoints are every member's client endpoint.
	Endpoints []string
	// Kill stops the member behind Endpoints[i] at once (kill -9).
	Kill        func(i int) error
	DialTimeout time.Duration
	// Username and Password, when set, authenticate.
	Username, Password string
	// TLS, when set, is the connections' TLS (https:// endpoints).
	TLS *tls.Config
}

// FailoverReport is how long a cluster took from losing its leader to
// acknowledging a write again.
type FailoverReport struct {
	Leader    string        `json:"leader"` // the endpoint killed
	FirstAck  time.Duration `json:"first_ack_ns"`
	Attempts  int           `json:"attempts"` // writes tried until one succeeded
	Survivors []string      `json:"survivors"`
}

// Failover finds the leader among the endpoints, kills it, and writes
// through the other members until one write is acknowledged. Each write
// waits at most 100ms, so the time is measured to within about that.
func Failover(ctx context.Context, c FailoverConfig) (FailoverReport, error) {
	if len(c.Endpoints) < 2 || c.Kill == nil {
		return FailoverReport{}, errors.New("failover needs two or more endpoints and a way to kill each member")
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	cfg := clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: zap.NewNop(), Username: c.Username, Password: c.Password, TLS: c.TLS}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return FailoverReport{}, fmt.Errorf("connect: %w", err)
	}
	defer cli.Close()
	lead, err := findLeader(ctx, cli, c.Endpoints)
	if err != nil {
		return FailoverReport{}, err
	}
	rep := FailoverReport{Leader: c.Endpoints[lead]}
	for i, ep := range c.Endpoints {
		if i != lead {
			rep.Survivors = append(rep.Survivors, ep)
		}
	}
	cfg.Endpoints = slices.Clone(rep.Survivors)
	wcli, err := clientv3.New(cfg)
	if err != nil {
		return rep, fmt.Errorf("connect to the survivors: %w", err)
	}
	defer wcli.Close()
	// A write before the kill: the connections are up and warm.
	if _, err := wcli.Put(ctx, "bench-failover", "before"); err != nil {
		return rep, fmt.Errorf("write before the kill: %w", err)
	}
	if err := c.Kill(lead); err != nil {
		return rep, fmt.Errorf("kill the leader at %s: %w", rep.Leader, err)
	}
	killed := time.Now()
	for ctx.Err() == nil {
		rep.Attempts++
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err := wcli.Put(pctx, "bench-failover", fmt.Sprint(rep.Attempts))
		cancel()
		if err == nil {
			rep.FirstAck = time.Since(killed)
			return rep, nil
		}
	}
	return rep, fmt.Errorf("no write acknowledged within the run's timeout: %w", ctx.Err())
}

// findLeader returns the index of the endpoint whose member leads.
func findLeader(ctx context.Context, cli *clientv3.Client, endpoints []string) (int, error) {
	for i, ep := range endpoints {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			return -1, fmt.Errorf("status of %s: %w", ep, err)
		}
		if st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, errors.New("no endpoint is the leader: is the cluster healthy?")
}
