package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/agent/process"
)

// Options are what an Agent is built with besides its configuration.
type Options struct {
	// Client reaches the store. When nil, New dials the configuration's
	// store block and Close closes the client.
	Client *clientv3.Client
	// Logger receives the agent's decisions. Nil discards them.
	Logger *slog.Logger
	// Supervisor runs the configured processes. When nil, New makes one and
	// Close stops its processes.
	Supervisor *process.Supervisor
	// Rand draws the splay delays. Nil uses a randomly seeded source; tests
	// pass a seeded one to know the delays in advance. Only the agent's
	// loop uses it.
	Rand *rand.Rand
	// Idle, when set, runs beside the loop each time the agent has given
	// the memory of a burst of work back to the OS (once per burst, a
	// second after it). tend agent passes exepages.Release, so that an idle
	// agent also drops the pages of its binary the burst mapped in; a
	// program whose binary serves busier work (tend dev, with the store in
	// the same process) leaves it nil.
	Idle func()
}

// Agent keeps one host's files in step with the keyspace. Build it with New,
// run it with Run (or render once with Once), and Close it when done.
type Agent struct {
	client     *clientv3.Client
	ownsClient bool
	log        *slog.Logger
	procs      *process.Supervisor
	ownsProcs  bool
	reload     chan *config.Config
	rand       *rand.Rand
	idle       func() // nil: nothing to do when idle
	started    time.Time
	// changed gets a token (without blocking) whenever a template's or a
	// service's status is set, for the status publisher.
	changed chan struct{}

	metrics *metrics

	mu       sync.Mutex
	cfg      *config.Config           // the configuration in use
	status   map[string]Status        // per template name
	services map[string]ServiceStatus // per service name
	// pending and pendingEnv name the templates and process environments
	// that have not rendered once yet, as the loop last said.
	pending, pendingEnv []string
	telemetryAddr       string // where the telemetry listener is; empty when none
}

// New builds an agent for cfg, a validated configuration.
func New(cfg *config.Config, opts Options) (*Agent, error) {
	a := &Agent{
		client:    opts.Client,
		log:       opts.Logger,
		procs:     opts.Supervisor,
		reload:    make(chan *config.Config, 1),
		rand:      opts.Rand,
		idle:      opts.Idle,
		started:   time.Now(),
		changed:   make(chan struct{}, 1),
		cfg:       cfg,
		status:    map[string]Status{},
		services:  map[string]ServiceStatus{},
		ownsProcs: opts.Supervisor == nil,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, t := range cfg.Templates {
		a.pending = append(a.pending, t.Name)
	}
	for _, p := range cfg.Processes {
		if p.EnvPrefix != "" {
			a.pendingEnv = append(a.pendingEnv, p.Name)
		}
	}
	if a.rand == nil {
		a.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if a.client == nil {
		c, err := Dial(cfg.Store)
		if err != nil {
			return nil, err
		}
		a.client, a.ownsClient = c, true
	}
	if a.procs == nil {
		a.procs = process.NewSupervisor(a.log)
	}
	a.metrics = newMetrics(a)
	return a, nil
}

// Close stops the supervised processes (when the agent made the supervisor)
// and closes the store client (when the agent dialed it).
func (a *Agent) Close() error {
	var errs []error
	if a.ownsProcs {
		if err := a.procs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop processes: %w", err))
		}
	}
	if a.ownsClient {
		if err := a.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("close store client: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Reload hands a new, validated configuration to the running agent. Run
// swaps it in between two changes: templates are re-rendered under the new
// configuration and processes whose definition changed are restarted. A
// configuration handed in before the previous one was taken replaces it.
func (a *Agent) Reload(cfg *config.Config) {
	for {
		select {
		case a.reload <- cfg:
			return
		default:
		}
		select {
		case <-a.reload:
		default:
		}
	}
}

// Config returns the configuration in use.
func (a *Agent) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// Run watches, renders and applies, and keeps the configured services
// registered, until ctx is done; then it deregisters the services and
// returns nil. It returns an error only when it cannot start (e.g. a
// template source folder cannot be watched). Store outages never end it:
// the files keep their last good content and the agent retries.
func (a *Agent) Run(ctx context.Context) error {
	l := newLoop(a, a.Config())
	return l.run(ctx)
}

// Status is what the agent last did with one template.
type Status struct {
	Template    string `json:"template"`
	Destination string `json:"destination"`
	// Revision is the store revision the file on disk was rendered at.
	Revision int64 `json:"revision"`
	// AppliedAt is when the file was last replaced; zero (and left out of
	// the JSON) until it was.
	AppliedAt time.Time `json:"applied_at,omitzero"`
	// Outcome of the last attempt: applied, unchanged, render-failed,
	// check-failed, write-failed, hook-failed, rolled-back, rejected.
	Outcome string `json:"outcome"`
	// Error is the last attempt's error, if it failed.
	Error string `json:"error,omitempty"`
}

// Failed reports whether the last attempt failed: the file on disk is
// older than what the store holds, or was rolled back.
func (s Status) Failed() bool {
	switch s.Outcome {
	case "render-failed", "check-failed", "write-failed", "hook-failed", "rolled-back", "rejected":
		return true
	}
	return false
}

// Status returns the status of every template, sorted by name.
func (a *Agent) Status() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Status, 0, len(a.status))
	for _, s := range a.status {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Template < out[j].Template })
	return out
}

// setStatus records an outcome for template name.
func (a *Agent) setStatus(name string, update func(*Status)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status[name]
	s.Template = name
	update(&s)
	a.status[name] = s
	a.metrics.status(s)
	a.notifyLocked()
}

// notifyLocked tells the status publisher that a status was set.
func (a *Agent) notifyLocked() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// revision is the revision template name's file was last rendered at.
func (a *Agent) revision(name string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status[name].Revision
}
