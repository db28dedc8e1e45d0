package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Config describes one run.
type Config struct {
	Endpoints    []string
	Conns        int // gRPC connections
	Clients      int // concurrent workers sharing the connections
	Total        int // requests (puts for Watch)
	KeySize      int
	ValSize      int
	KeySpace     int  // keys are drawn from [0, KeySpace)
	Sequential   bool // keys in order instead of at random
	Serializable bool // Range: serializable instead of linearizable reads
	Watchers     int  // Watch: watchers on the prefix
	DialTimeout  time.Duration
	// Username and Password, when set, authenticate every connection.
	Username, Password string
	// TLS, when set, is the connections' TLS (https:// endpoints).
	TLS *tls.Config
}

func (c *Config) validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("no endpoints (set --endpoints)")
	case c.Conns < 1:
		return fmt.Errorf("--conns %d: need at least 1", c.Conns)
	case c.Clients < 1:
		return fmt.Errorf("--clients %d: need at least 1", c.Clients)
	case c.Total < 1:
		return fmt.Errorf("--total %d: need at least 1", c.Total)
	case c.KeySize < 1:
		return fmt.Errorf("--key-size %d: need at least 1", c.KeySize)
	case c.KeySpace < 1:
		return fmt.Errorf("--key-space-size %d: need at least 1", c.KeySpace)
	case c.ValSize < 0:
		return fmt.Errorf("--val-size %d: cannot be negative", c.ValSize)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	return nil
}

// Report is the outcome of one run.
type Report struct {
	Op         string        `json:"op"`
	Clients    int           `json:"clients"`
	Conns      int           `json:"conns"`
	Requests   int           `json:"requests"`
	Errors     int           `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Took       time.Duration `json:"took_ns"`
	Throughput float64       `json:"requests_per_second"`
	P50        time.Duration `json:"p50_ns"`
	P90        time.Duration `json:"p90_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
}

// Print writes the report as a small table.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%-10s %8s %6s %9s %7s %12s %10s %10s %10s %10s\n",
		"op", "clients", "conns", "requests", "errors", "req/s", "p50", "p90", "p99", "max")
	fmt.Fprintf(w, "%-10s %8d %6d %9d %7d %12.1f %10s %10s %10s %10s\n",
		r.Op, r.Clients, r.Conns, r.Requests, r.Errors, r.Throughput,
		round(r.P50), round(r.P90), round(r.P99), round(r.Max))
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// report summarises latencies; it sorts them.
func report(op string, c Config, took time.Duration, lat []time.Duration, errs int, firstErr error) Report {
	slices.Sort(lat)
	r := Report{Op: op, Clients: c.Clients, Conns: c.Conns, Requests: len(lat), Errors: errs, Took: took}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	if took > 0 {
		r.Throughput = float64(len(lat)) / took.Seconds()
	}
	if n := len(lat); n > 0 {
		r.P50, r.P90, r.P99, r.Max = pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), lat[n-1]
	}
	return r
}

// pct is the p-quantile of sorted, which is not empty.
func pct(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	return sorted[min(n-1, int(float64(n)*p))]
}

// connect opens c.Conns clients.
func connect(c Config) ([]*clientv3.Client, func(), error) {
	var clis []*clientv3.Client
	closeAll := func() {
		for _, cli := range clis {
			cli.Close()
		}
	}
	for range c.Conns {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: zap.NewNop(),
			Username: c.Username, Password: c.Password, TLS: c.TLS,
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("connect to %v: %w", c.Endpoints, err)
		}
		clis = append(clis, cli)
	}
	return clis, closeAll, nil
}

// keyer makes fixed-size keys.
type keyer struct {
	size, space int
	sequential  bool
}

func (k keyer) key(i int, rng *rand.Rand) string {
	n := i % k.space
	if !k.sequential {
		n = rng.IntN(k.space)
	}
	b := make([]byte, max(k.size, 8))
	binary.BigEndian.PutUint64(b[len(b)-8:], uint64(n))
	return string(b[len(b)-k.size:])
}

// run starts c.Clients workers that call do for request numbers 0..Total-1
// until they are done or ctx ends, and reports the latencies of successful
// calls.
func run(ctx context.Context, op string, c Config, do func(ctx context.Context, cli *clientv3.Client, i int, rng *rand.Rand) error) (Report, error) {
	if err := c.validate(); err != nil {
		return Report{}, err
	}
	clis, closeAll, err := connect(c)
	if err != nil {
		return Report{}, err
	}
	defer closeAll()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, min(c.Total, 1<<20)) // Total may be huge with a deadline
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range c.Clients {
		cli := clis[w%len(clis)]
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		wg.Add(1)
		go func() { // stops when the counter passes Total or ctx ends
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= c.Total {
					return
				}
				t0 := time.Now()
				err := do(ctx, cli, i, rng)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := ctx.Err(); err != nil && len(lat) < c.Total {
		return report(op, c, took, lat, errs, firstErr), fmt.Errorf("%s benchmark stopped after %d of %d requests: %w", op, len(lat)+errs, c.Total, err)
	}
	return report(op, c, took, lat, errs, firstErr), nil
}

// Put writes Total keys with values of ValSize bytes.
func Put(ctx context.Context, c Config) (Report, error) {
	k := keyer{size: c.KeySize, space: c.KeySpace, sequential: c.Sequential}
	val := string(make([]byte, c.ValSize))
	return run(ctx, "put", c, func(ctx context.Context, cli *clientv3.Client, i int, rng *rand.Rand) error {
		_, err := cli.Put(ctx, k.key(i, rng), val)
		return err
	})
}

// Range reads Total single keys, linearizably unless c.Serializable. Run Put
// with the same key settings first so the keys exist.
func Range(ctx context.Context, c Config) (Report, error) {
	k := keyer{size: c.KeySize, space: c.KeySpace, sequential: c.Sequential}
	var opts []clientv3.OpOption
	if c.Serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	return run(ctx, "range", c, func(ctx context.Context, cli *clientv3.Client, i int, rng *rand.Rand) error {
		_, err := cli.Get(ctx, k.key(i, rng), opts...)
		return err
	})
}
