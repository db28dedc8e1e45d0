package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/connectivity"

	"github.com/tendkv/tend/agent/config"
)

// metrics are the agent's Prometheus series, in a registry of the agent's
// own (with the Go and process collectors), so that several agents in one
// process, or an agent beside a cluster member, do not share series. Their
// labels are the names of templates, hooks and services: bounded by the
// configuration.
type metrics struct {
	reg                *prometheus.Registry
	renders            *prometheus.CounterVec
	applies            *prometheus.CounterVec
	appliedRevision    *prometheus.GaugeVec
	appliedAt          *prometheus.GaugeVec
	renderDuration     prometheus.Histogram
	applyDuration      prometheus.Histogram
	hookRuns           *prometheus.CounterVec
	rollbacks          *prometheus.CounterVec
	watchStreams       prometheus.Gauge
	servicesRegistered *prometheus.GaugeVec
}

// durationBuckets span 0.5ms to about 16s.
var durationBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_agent_renders_total",
			Help: "Renders of a template, by outcome: applied (the file was replaced), unchanged, rejected (the content was rolled back or refused before), render-failed, check-failed, write-failed.",
		}, []string{"template", "outcome"}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_agent_applies_total",
			Help: "Files replaced with a new render.",
		}, []string{"template"}),
		appliedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_agent_last_applied_revision",
			Help: "The store revision the file on disk was rendered at.",
		}, []string{"template"}),
		appliedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_agent_last_apply_timestamp_seconds",
			Help: "When the file was last replaced, in seconds since the Unix epoch.",
		}, []string{"template"}),
		renderDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tend_agent_render_duration_seconds",
			Help:    "Time to render a template, its store reads included.",
			Buckets: durationBuckets,
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tend_agent_apply_duration_seconds",
			Help:    "Time from the start of a render to its file replaced and durable (check, fsync, rename and folder fsync included).",
			Buckets: durationBuckets,
		}),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_agent_hook_runs_total",
			Help: "Hook runs, by outcome: ok or failed.",
		}, []string{"hook", "outcome"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_agent_rollbacks_total",
			Help: "Files put back to their previous content after a reload, hook or health gate failed.",
		}, []string{"template"}),
		watchStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tend_agent_watch_streams",
			Help: "Watches the agent holds on the store (one per merged key or prefix).",
		}),
		servicesRegistered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_agent_services_registered",
			Help: "1 while the service's key is in the store under a lease kept alive, else 0.",
		}, []string{"service"}),
	}
	m.reg.MustRegister(
		m.renders, m.applies, m.appliedRevision, m.appliedAt, m.renderDuration, m.applyDuration,
		m.hookRuns, m.rollbacks, m.watchStreams, m.servicesRegistered,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tend_agent_store_connected",
			Help: "1 while the agent's connection to the store is up, else 0.",
		}, func() float64 {
			if ok, _ := a.storeConnected(); ok {
				return 1
			}
			return 0
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// status brings the per-template gauges in line with s.
func (m *metrics) status(s Status) {
	if s.Revision > 0 {
		m.appliedRevision.WithLabelValues(s.Template).Set(float64(s.Revision))
	}
	if !s.AppliedAt.IsZero() {
		m.appliedAt.WithLabelValues(s.Template).Set(float64(s.AppliedAt.UnixNano()) / 1e9)
	}
}

// forget drops the series of templates and services no longer configured.
func (m *metrics) forget(cfg *config.Config, old *config.Config) {
	templates := map[string]bool{}
	for _, t := range cfg.Templates {
		templates[t.Name] = true
	}
	for _, t := range old.Templates {
		if !templates[t.Name] {
			m.appliedRevision.DeleteLabelValues(t.Name)
			m.appliedAt.DeleteLabelValues(t.Name)
		}
	}
}

// storeConnected reports whether the client's connection to the store is
// up (ready, or idle after working), and its state.
func (a *Agent) storeConnected() (bool, connectivity.State) {
	conn := a.client.ActiveConnection()
	if conn == nil {
		return false, connectivity.Shutdown
	}
	st := conn.GetState()
	return st == connectivity.Ready || st == connectivity.Idle, st
}

// setPending records the templates and the process environments that have
// not rendered once yet, for /health.
func (a *Agent) setPending(templates, envs []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending, a.pendingEnv = templates, envs
}

// Health is what /health answers.
type Health struct {
	Healthy        bool `json:"healthy"`
	StoreConnected bool `json:"store_connected"`
	// Templates counts the configured templates, Rendered those that have
	// rendered at least once.
	Templates int `json:"templates"`
	Rendered  int `json:"rendered"`
	// Reasons say why the agent is not healthy.
	Reasons []string `json:"reasons,omitempty"`
}

// Health says whether the agent has rendered every template at least once
// and its store connection is up, and if not, why.
func (a *Agent) Health() Health {
	ok, state := a.storeConnected()
	cfg := a.Config()
	a.mu.Lock()
	defer a.mu.Unlock()
	h := Health{StoreConnected: ok, Templates: len(cfg.Templates), Rendered: len(cfg.Templates)}
	if !ok {
		h.Reasons = append(h.Reasons, fmt.Sprintf("store connection is %s (endpoints %s)", strings.ToLower(state.String()), strings.Join(cfg.Store.Endpoints, ",")))
	}
	for _, name := range a.pending {
		r := fmt.Sprintf("template %q not rendered yet", name)
		if s, ok := a.status[name]; ok && s.Error != "" {
			r += ": " + s.Outcome + ": " + truncate(s.Error, maxStatusError)
		}
		h.Rendered--
		h.Reasons = append(h.Reasons, r)
	}
	for _, name := range a.pendingEnv {
		h.Reasons = append(h.Reasons, fmt.Sprintf("process %q: environment not read yet", name))
	}
	h.Healthy = len(h.Reasons) == 0
	return h
}

func (a *Agent) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := a.Health()
	w.Header().Set("Content-Type", "application/json")
	if !h.Healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}

// telemetry is the running HTTP listener of the telemetry block.
type telemetry struct {
	cfg  config.Telemetry
	addr string // where it listens
	srv  *http.Server
	done chan struct{}
}

// startTelemetry listens on t.Listen and serves /metrics and /health until
// stop.
func (a *Agent) startTelemetry(t *config.Telemetry) (*telemetry, error) {
	ln, err := net.Listen("tcp", t.Listen)
	if err != nil {
		return nil, fmt.Errorf("%s: telemetry listen %s: %w (stop what listens there, or change listen)", t.Pos, t.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/health", a.serveHealth)
	s := &telemetry{cfg: *t, addr: ln.Addr().String(), srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	a.log.Info("telemetry listening", "address", s.addr, "paths", "/metrics,/health")
	return s, nil
}

// stop closes the listener, lets the requests under way finish for a
// moment, and waits for the server.
func (s *telemetry) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
}

// TelemetryAddr is the address the telemetry listener is bound to (the
// port chosen when listen asks for port 0); empty when none runs.
func (a *Agent) TelemetryAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.telemetryAddr
}

// syncTelemetry makes the listener match the configuration. A new address
// is bound before the old listener is closed; when it cannot be, the old
// one stays (at start, there is none: Run fails instead).
func (l *loop) syncTelemetry() error {
	want := l.cfg.Telemetry
	if cur := l.telemetry; cur != nil && want != nil && cur.cfg.Listen == want.Listen {
		return nil
	}
	if want == nil {
		l.stopTelemetry()
		return nil
	}
	s, err := l.a.startTelemetry(want)
	if err != nil {
		return err
	}
	l.stopTelemetry()
	l.telemetry = s
	l.a.mu.Lock()
	l.a.telemetryAddr = s.addr
	l.a.mu.Unlock()
	return nil
}

func (l *loop) stopTelemetry() {
	if l.telemetry == nil {
		return
	}
	l.telemetry.stop()
	l.telemetry = nil
	l.a.mu.Lock()
	l.a.telemetryAddr = ""
	l.a.mu.Unlock()
}

// publishPending tells /health which templates and environments have not
// rendered once yet.
func (l *loop) publishPending() {
	var templates, envs []string
	for _, u := range l.units {
		if !u.rendered {
			templates = append(templates, u.cfg.Name)
		}
	}
	for _, e := range l.envs {
		if !e.rendered {
			envs = append(envs, e.cfg.Name)
		}
	}
	l.a.setPending(templates, envs)
}
