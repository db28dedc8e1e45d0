package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
)

// The states of a Laggard.
const (
	// Behind: the template's file is older than the revision.
	Behind = "behind"
	// Failed: the template's last attempt failed.
	Failed = "failed"
	// Gone: the host's entry went while waiting.
	Gone = "gone"
	// Invalid: the entry is not an agent's status.
	Invalid = "invalid"
	// Missing: fewer entries than Options.Hosts; the laggard names no host.
	Missing = "missing"
)

// Options say which entries to read and what counts as reached.
type Options struct {
	// Prefix is the prefix of the agents' status keys.
	Prefix string
	// Revision is the store revision every template must reach. With 0
	// only failed templates and invalid entries lag.
	Revision int64
	// Templates, when not empty, are the only templates that count.
	Templates []string
	// Hosts is the number of entries needed: fewer is not reached.
	Hosts int
	// Timeout bounds each read of the prefix (Read's, and those Wait
	// makes); zero leaves it to the context.
	Timeout time.Duration
}

// Wants reports whether template counts: Templates is empty or names it.
func (o Options) Wants(template string) bool {
	return len(o.Templates) == 0 || slices.Contains(o.Templates, template)
}

// state says how s lags (Failed or Behind), or "" if it does not count
// or has reached the revision.
func (o Options) state(s agent.Status) string {
	switch {
	case !o.Wants(s.Template):
		return ""
	case s.Failed():
		return Failed
	case s.Revision < o.Revision:
		return Behind
	}
	return ""
}

// appendLaggards appends what of h lags to out: h itself when it is not a
// status, else its templates behind or failed, in the status's order.
func (o Options) appendLaggards(out []Laggard, h Host) []Laggard {
	if h.Status == nil {
		return append(out, Laggard{Host: h.Name, State: Invalid, Error: h.Invalid})
	}
	for _, s := range h.Status.Templates {
		if state := o.state(s); state != "" {
			out = append(out, Laggard{Host: h.Name, Template: s.Template, Revision: s.Revision, State: state, Outcome: s.Outcome, Error: s.Error})
		}
	}
	return out
}

// Host is one entry under the prefix.
type Host struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	// Status is what the agent published; nil when Invalid says why the
	// value is not a status.
	Status  *agent.HostStatus `json:"status,omitempty"`
	Invalid string            `json:"invalid,omitempty"`
}

// Laggard is a template (or a host) that has not reached the revision.
type Laggard struct {
	Host     string `json:"host"`
	Template string `json:"template,omitempty"`
	Revision int64  `json:"revision"`
	// State is Behind, Failed, Gone, Invalid or Missing (Host is empty).
	State   string `json:"state"`
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Report is a View at one moment, as tend fleet status -w json prints it.
type Report struct {
	Prefix string `json:"prefix"`
	// HeaderRevision is the store revision the entries were read at.
	HeaderRevision int64     `json:"header_revision"`
	Revision       int64     `json:"revision,omitempty"`
	Hosts          []Host    `json:"hosts"`
	Laggards       []Laggard `json:"laggards,omitempty"`
}

// View is the entries under the prefix as last read or watched. Besides
// the entries it keeps counts of what lags, updated by each entry that is
// set or deleted, so that Reached is O(1).
type View struct {
	opts  Options
	rev   int64            // the store revision the entries are at
	hosts map[string]entry // by key
	// expected are the keys present when Wait started: one that goes is
	// a laggard.
	expected map[string]bool
	// lagging is the number of laggards among the entries present
	// (invalid entries, and templates behind or failed): the sum of their
	// lag.
	lagging int
	// gone is the number of expected keys not present.
	gone int
}

// entry is a Host with the number of laggards it adds.
type entry struct {
	Host
	lag int
}

// NewView returns an empty View of the entries o names; Read fills it.
func NewView(o Options) *View {
	return &View{opts: o, hosts: map[string]entry{}}
}

// Read replaces the entries with those under the prefix now. The keys
// expected stay expected. Its error is the client's, for the caller to
// name with what it knows of the endpoints and timeouts.
func (v *View) Read(ctx context.Context, cli *clientv3.Client) error {
	if v.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.opts.Timeout)
		defer cancel()
	}
	resp, err := cli.Get(ctx, v.opts.Prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	v.load(resp.Header.Revision, resp.Kvs)
	return nil
}

// load replaces the entries with kvs, read at rev.
func (v *View) load(rev int64, kvs []*mvccpb.KeyValue) {
	v.rev, v.hosts, v.lagging, v.gone = rev, make(map[string]entry, len(kvs)), 0, len(v.expected)
	for _, kv := range kvs {
		v.set(kv)
	}
}

// Apply applies one watch event to the entries.
func (v *View) Apply(ev *clientv3.Event) {
	v.rev = max(v.rev, ev.Kv.ModRevision)
	if ev.Type == clientv3.EventTypeDelete {
		v.delete(string(ev.Kv.Key))
		return
	}
	v.set(ev.Kv)
}

// set puts kv's entry in place of the key's last one, and adjusts the
// counts by the difference.
func (v *View) set(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	e := entry{Host: Host{Key: key, Name: v.name(key)}}
	var hs agent.HostStatus
	if err := json.Unmarshal(kv.Value, &hs); err != nil {
		e.Invalid = fmt.Sprintf("not an agent's status: %v", err)
	} else {
		e.Status = &hs
	}
	e.lag = len(v.opts.appendLaggards(nil, e.Host))
	if old, ok := v.hosts[key]; ok {
		v.lagging -= old.lag
	} else if v.expected[key] {
		v.gone--
	}
	v.hosts[key] = e
	v.lagging += e.lag
}

// delete removes key's entry, and adjusts the counts.
func (v *View) delete(key string) {
	old, ok := v.hosts[key]
	if !ok {
		return
	}
	delete(v.hosts, key)
	v.lagging -= old.lag
	if v.expected[key] {
		v.gone++
	}
}

// expect marks the keys present as expected.
func (v *View) expect() {
	if v.expected == nil {
		v.expected = make(map[string]bool, len(v.hosts))
	}
	for key := range v.hosts {
		v.expected[key] = true
	}
}

// name is the host name of key: what follows the prefix (and a slash);
// the whole key if nothing does.
func (v *View) name(key string) string {
	if name := strings.TrimPrefix(strings.TrimPrefix(key, v.opts.Prefix), "/"); name != "" {
		return name
	}
	return key
}

// Reached reports whether the fleet has reached the revision: some host
// publishes, at least Options.Hosts do, and nothing lags. It is the same
// as len(v.Laggards()) == 0 with at least one host, in O(1).
func (v *View) Reached() bool {
	n := len(v.hosts)
	return n > 0 && n >= v.opts.Hosts && v.lagging == 0 && v.gone == 0
}

// Empty reports whether no host publishes and none was expected to: the
// prefix is not where any agent publishes.
func (v *View) Empty() bool {
	return len(v.hosts) == 0 && len(v.expected) == 0
}

// Revision is the store revision the entries are at.
func (v *View) Revision() int64 { return v.rev }

// Hosts returns the entries sorted by name.
func (v *View) Hosts() []Host {
	out := make([]Host, 0, len(v.hosts))
	for _, e := range v.hosts {
		out = append(out, e.Host)
	}
	slices.SortFunc(out, func(a, b Host) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Key, b.Key))
	})
	return out
}

// Laggards lists what has not reached the revision: by host name, the
// entries that are not statuses and the templates behind or failed; then,
// by key, the expected hosts that went; then whether fewer than
// Options.Hosts publish. It sorts every entry: call it once, to print.
func (v *View) Laggards() []Laggard {
	var out []Laggard
	for _, h := range v.Hosts() {
		out = v.opts.appendLaggards(out, h)
	}
	var gone []string
	for key := range v.expected {
		if _, ok := v.hosts[key]; !ok {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone)
	for _, key := range gone {
		out = append(out, Laggard{Host: v.name(key), State: Gone, Error: "its entry went: the agent stopped, or lost the store for longer than its status ttl"})
	}
	if len(v.hosts) < v.opts.Hosts {
		out = append(out, Laggard{State: Missing, Error: fmt.Sprintf("%d of %d hosts (--hosts) publish under %s", len(v.hosts), v.opts.Hosts, v.opts.Prefix)})
	}
	return out
}

// Report returns the view as printed: the hosts by name and, when
// Options.Revision is set, the laggards.
func (v *View) Report() Report {
	r := Report{Prefix: v.opts.Prefix, HeaderRevision: v.rev, Revision: v.opts.Revision, Hosts: v.Hosts()}
	if v.opts.Revision > 0 {
		r.Laggards = v.Laggards()
	}
	return r
}

// Wait watches the prefix until the fleet reaches the revision, d passes
// or ctx ends, as the package documentation's steps say; the keys present
// when it starts are expected from then on. It reads first if Read has
// not. It returns nil unless a read fails on its own (the client's error,
// as Read's): the caller asks Reached or Laggards what came of it.
func (v *View) Wait(ctx context.Context, cli *clientv3.Client, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if v.rev == 0 {
		if err := v.Read(ctx, cli); err != nil {
			return waitReadError(ctx, err)
		}
	}
	v.expect()
	for !v.Reached() {
		if v.watch(ctx, cli) || ctx.Err() != nil {
			return nil
		}
		if err := v.Read(ctx, cli); err != nil {
			return waitReadError(ctx, err)
		}
	}
	return nil
}

// waitReadError is what Wait returns for a read's err: nil when Wait's
// own time is up, since then the read did not fail on its own.
func waitReadError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// watch applies the prefix's changes after v.rev until the fleet reaches
// the revision (true) or the watch ends (false: ctx is done, or the watch
// was cancelled, e.g. by a compaction, and v must be read again).
func (v *View) watch(parent context.Context, cli *clientv3.Client) bool {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	for resp := range cli.Watch(clientv3.WithRequireLeader(ctx), v.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(v.rev+1)) {
		if resp.Err() != nil || resp.Canceled {
			return false
		}
		for _, ev := range resp.Events {
			v.Apply(ev)
		}
		v.rev = max(v.rev, resp.Header.Revision)
		if v.Reached() {
			return true
		}
	}
	return false
}
