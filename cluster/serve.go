package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/soheilhy/cmux"
	"github.com/tmc/grpc-websocket-proxy/wsproxy"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/etcdserverpb/gw"
	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/pkg/v3/debugutil"
	electiongw "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb/gw"
	lockgw "go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb/gw"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// Each client listener serves, as etcd's does, gRPC (HTTP/2) and plain HTTP
// (HTTP/1.1): GET /health, /livez, /readyz, /version, /metrics, and the JSON gateway to the gRPC
// API under /v3/ (as `curl -X POST .../v3/kv/range -d '{"key":"Zm9v"}'`);
// with EnablePprof, Go's profiles under /debug/pprof/.

// httpStack is the HTTP side shared by the client listeners.
type httpStack struct {
	srv  *http.Server
	conn *grpc.ClientConn // the gateway's connection to our own gRPC
}

// newHTTPStack builds the HTTP handlers; the gateway dials the member's
// first client URL.
func (m *Member) newHTTPStack(ctx context.Context) (*httpStack, error) {
	target, creds, err := m.clientDialOption(m.clientURLs[0], true)
	if err != nil {
		return nil, fmt.Errorf("connect JSON gateway: %w", err)
	}
	conn, err := grpc.NewClient(target, creds,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<31-1)))
	if err != nil {
		return nil, fmt.Errorf("connect JSON gateway to %s: %w", target, err)
	}
	gwmux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}))
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		gw.RegisterKVHandler, gw.RegisterWatchHandler, gw.RegisterLeaseHandler,
		gw.RegisterClusterHandler, gw.RegisterMaintenanceHandler, gw.RegisterAuthHandler,
		lockgw.RegisterLockHandler, electiongw.RegisterElectionHandler,
	} {
		if err := register(ctx, gwmux, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("register JSON gateway: %w", err)
		}
	}
	mux := http.NewServeMux()
	m.handleHealth(mux)
	mux.Handle("/metrics", m.metrics.handler())
	mux.HandleFunc("/version", serveVersion)
	if m.cfg.EnablePprof {
		for path, h := range debugutil.PProfHandlers() {
			mux.Handle(path, h)
		}
	}
	mux.Handle("/v3/", wsproxy.WebsocketProxy(gwmux,
		// Streams (watch, keep-alive) arrive as websocket upgrades of GET.
		wsproxy.WithRequestMutator(func(_, out *http.Request) *http.Request {
			out.Method = http.MethodPost
			return out
		}),
		wsproxy.WithMaxRespBodyBufferSize(1<<31-1),
	))
	return &httpStack{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Minute,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
		conn: conn,
	}, nil
}

// handleHealth serves /health, /livez and /readyz on mux.
func (m *Member) handleHealth(mux *http.ServeMux) {
	mux.HandleFunc("/health", m.serveHealth)
	m.handleProbes(mux, "livez", []probe{{"serializable_read", m.readProbe(true)}})
	m.handleProbes(mux, "readyz", []probe{
		{"data_corruption", m.alarmProbe(pb.AlarmType_CORRUPT)},
		{"linearizable_read", m.readProbe(false)},
		{"non_learner", func(context.Context) error { return nil }},
		{"serializable_read", m.readProbe(true)},
	})
}

// health is etcd's /health answer.
type health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth answers as etcd's /health: unhealthy under an alarm (unless
// excluded with ?exclude=NOSPACE), without a leader, or when a read fails;
// ?serializable=true checks this member alone.
func (m *Member) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	h := m.health(r)
	b, _ := json.Marshal(h)
	if h.Health == "true" {
		m.metrics.healthSuccess.Inc()
	} else {
		m.metrics.healthFailures.Inc()
	}
	if h.Health != "true" {
		http.Error(w, string(b), http.StatusServiceUnavailable)
		return
	}
	w.Write(b)
}

func (m *Member) health(r *http.Request) health {
	q := r.URL.Query()
	excluded := map[string]bool{}
	for _, a := range q["exclude"] {
		excluded[a] = true
	}
	for _, a := range m.store.Alarms() {
		if !excluded[a.Alarm.String()] {
			return health{"false", "ALARM " + a.Alarm.String()}
		}
	}
	if q.Get("serializable") == "true" {
		return health{"true", ""}
	}
	if m.Leader() == 0 {
		return health{"false", "RAFT NO LEADER"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), m.requestTimeout())
	defer cancel()
	if err := m.LinearizableRead(ctx); err != nil {
		return health{"false", "RANGE ERROR:" + err.Error()}
	}
	return health{"true", ""}
}

// probe is one named check of /livez or /readyz.
type probe struct {
	name  string
	check func(context.Context) error
}

// handleProbes serves /<kind> (every probe but those in ?exclude=) and
// /<kind>/<probe>, as etcd's: "ok" (with each result under ?verbose), or
// 503 listing each result.
func (m *Member) handleProbes(mux *http.ServeMux, kind string, probes []probe) {
	run := func(w http.ResponseWriter, r *http.Request, ps []probe) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), m.requestTimeout())
		defer cancel()
		var out strings.Builder
		failed := false
		for _, p := range ps {
			if err := p.check(ctx); err != nil {
				failed = true
				fmt.Fprintf(&out, "[-]%s failed: %v\n", p.name, err)
			} else {
				fmt.Fprintf(&out, "[+]%s ok\n", p.name)
			}
		}
		if failed {
			http.Error(w, out.String(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, verbose := r.URL.Query()["verbose"]; verbose {
			fmt.Fprint(w, out.String())
		}
		fmt.Fprint(w, "ok\n")
	}
	mux.HandleFunc("/"+kind, func(w http.ResponseWriter, r *http.Request) {
		excluded := map[string]bool{}
		for _, e := range r.URL.Query()["exclude"] {
			excluded[e] = true
		}
		var ps []probe
		for _, p := range probes {
			if !excluded[p.name] {
				ps = append(ps, p)
			}
		}
		run(w, r, ps)
	})
	for _, p := range probes {
		mux.HandleFunc("/"+kind+"/"+p.name, func(w http.ResponseWriter, r *http.Request) { run(w, r, []probe{p}) })
	}
}

// readProbe reads one key, linearizably or from this member alone.
func (m *Member) readProbe(serializable bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if !serializable {
			if err := m.LinearizableRead(ctx); err != nil {
				return err
			}
		}
		_, err := m.store.Range(&pb.RangeRequest{Key: []byte("health"), KeysOnly: true, Limit: 1})
		return err
	}
}

// alarmProbe fails while alarm a is raised.
func (m *Member) alarmProbe(a pb.AlarmType) func(context.Context) error {
	return func(context.Context) error {
		for _, raised := range m.store.Alarms() {
			if raised.Alarm == a {
				return fmt.Errorf("alarm activated: %s", a)
			}
		}
		return nil
	}
}

// serveVersion answers as etcd's /version.
func serveVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	v := version.Cluster(version.Version) + ".0"
	b, _ := json.Marshal(map[string]string{"etcdserver": version.Version, "etcdcluster": v})
	w.Write(b)
}

// serveListener splits l between gRPC and HTTP and serves both until the
// listener closes; over TLS for an https:// URL (serveTLS). Errors after
// the member began stopping are expected.
func (m *Member) serveListener(l net.Listener, hs *httpStack, run func(func() error)) cmux.CMux {
	cm := cmux.New(l)
	if m.isTLSListener(l) {
		m.serveTLS(cm, hs, run)
	} else {
		grpcL := cm.Match(cmux.HTTP2())
		httpL := cm.Match(cmux.HTTP1())
		run(func() error { return m.grpc.Serve(grpcL) })
		run(func() error { return hs.srv.Serve(httpL) })
	}
	run(cm.Serve)
	return cm
}

// servingErr reports whether err from a Serve call means trouble rather
// than the member stopping.
func (m *Member) servingErr(err error) bool {
	if err == nil || m.ctx.Err() != nil {
		return false
	}
	return !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed)
}
