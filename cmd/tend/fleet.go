package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/agent/config"
)

// defaultFleetPrefix is where agents publish with the status block's
// default key.
var defaultFleetPrefix = strings.TrimSuffix(config.DefaultStatusKey, "{{ hostname }}")

// newFleetCmd is `tend fleet`: what the agents report about themselves.
func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "What the agents publish: which host applied which revision",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(newFleetStatusCmd(cf))
	return cmd
}

// fleetOptions are the flags of fleet status.
type fleetOptions struct {
	prefix    string
	revision  int64
	wait      time.Duration
	templates []string
	hosts     int // with revision: fewer entries than this is not reached
}

func newFleetStatusCmd(cf *clientFlags) *cobra.Command {
	var o fleetOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List each agent's templates: revision on disk, last outcome, when applied",
		Long: `List the status the agents publish under --prefix (agents with a status
block in their configuration): one row per host and template with the
revision of the file on disk, the outcome of the last attempt, when the file
was last replaced, and the last error. HOST is the entry's key below
--prefix: the host name, with the status block's default key.

--revision N marks the templates whose file is older than N, or whose last
attempt failed, and exits 1 naming them, so that a CI job can check a
rollout: N is the revision of the change (tend put -w json prints it). A
template that does not read the changed keys is not rendered again and
keeps its older revision; name the templates to check with --template.
--wait DURATION watches --prefix until every template reaches N or the
duration passes; a host whose entry goes meanwhile (its agent stopped, or
lost the store for longer than its ttl) counts as not reached. A host whose
agent never published is not listed: --hosts N requires N entries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.checkWriteOut("fleet status", "simple", "table", "json"); err != nil {
				return err
			}
			if o.prefix == "" {
				return badArgs("--prefix is empty (give the prefix of the agents' status keys, e.g. --prefix " + defaultFleetPrefix + ")")
			}
			if o.revision < 0 {
				return badArgs("--revision must be a store revision, 1 or more")
			}
			if o.wait < 0 {
				return badArgs("--wait must not be negative (e.g. --wait 2m)")
			}
			if o.hosts < 0 {
				return badArgs("--hosts must not be negative (the number of agents that must publish)")
			}
			if (o.wait > 0 || o.hosts > 0) && o.revision == 0 {
				if o.hosts > 0 {
					return badArgs("--hosts needs --revision N, the revision the hosts must reach")
				}
				return badArgs("--wait needs --revision N, the revision to wait for (e.g. the revision tend put -w json prints)")
			}
			return fleetStatus(cmd, cf, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.prefix, "prefix", defaultFleetPrefix, "the prefix of the agents' status keys")
	f.Int64Var(&o.revision, "revision", 0, "mark the templates below this revision or whose last attempt failed, and exit 1 if any is")
	f.DurationVar(&o.wait, "wait", 0, "with --revision: watch until every template reaches it, for at most this long")
	f.StringSliceVar(&o.templates, "template", nil, "only these templates (comma-separated or repeated)")
	f.IntVar(&o.hosts, "hosts", 0, "with --revision: the number of hosts that must publish (fewer is not reached)")
	return cmd
}

// fleetHost is one entry under the prefix.
type fleetHost struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	// Status is what the agent published; nil when Invalid says why the
	// value is not a status.
	Status  *agent.HostStatus `json:"status,omitempty"`
	Invalid string            `json:"invalid,omitempty"`
}

// fleetLaggard is a template (or a host) that has not reached --revision.
type fleetLaggard struct {
	Host     string `json:"host"`
	Template string `json:"template,omitempty"`
	Revision int64  `json:"revision"`
	// State is behind (the file is older than --revision), failed (the
	// last attempt failed), gone (the host's entry went while waiting),
	// invalid (the entry is not a status) or missing (fewer entries than
	// --hosts; Host is empty).
	State   string `json:"state"`
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// fleetReport is what fleet status prints with -w json.
type fleetReport struct {
	Prefix string `json:"prefix"`
	// HeaderRevision is the store revision the entries were read at.
	HeaderRevision int64          `json:"header_revision"`
	Revision       int64          `json:"revision,omitempty"`
	Hosts          []fleetHost    `json:"hosts"`
	Laggards       []fleetLaggard `json:"laggards,omitempty"`
}

// fleet is the entries under the prefix as last read or watched.
type fleet struct {
	prefix string
	rev    int64
	hosts  map[string]fleetHost // by key
	// expected are the keys present at the first read: with --wait, one
	// that goes is a laggard.
	expected map[string]bool
}

func (f *fleet) set(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	h := fleetHost{Key: key, Name: strings.TrimPrefix(strings.TrimPrefix(key, f.prefix), "/")}
	if h.Name == "" {
		h.Name = key
	}
	var hs agent.HostStatus
	if err := json.Unmarshal(kv.Value, &hs); err != nil {
		h.Invalid = fmt.Sprintf("not an agent's status: %v", err)
	} else {
		h.Status = &hs
	}
	f.hosts[key] = h
}

func (f *fleet) apply(ev *clientv3.Event) {
	if ev.Type == mvccpb.DELETE {
		delete(f.hosts, string(ev.Kv.Key))
		return
	}
	f.set(ev.Kv)
}

// sorted returns the hosts by name.
func (f *fleet) sorted() []fleetHost {
	out := make([]fleetHost, 0, len(f.hosts))
	for _, h := range f.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// laggards lists what has not reached rev: templates behind it or whose
// last attempt failed, entries that are not statuses, and (when waiting)
// hosts whose entry went.
func (f *fleet) laggards(o fleetOptions) []fleetLaggard {
	var out []fleetLaggard
	for _, h := range f.sorted() {
		if h.Status == nil {
			out = append(out, fleetLaggard{Host: h.Name, State: "invalid", Error: h.Invalid})
			continue
		}
		for _, s := range h.Status.Templates {
			if !o.wants(s.Template) {
				continue
			}
			l := fleetLaggard{Host: h.Name, Template: s.Template, Revision: s.Revision, Outcome: s.Outcome, Error: s.Error}
			switch {
			case s.Failed():
				l.State = "failed"
			case s.Revision < o.revision:
				l.State = "behind"
			default:
				continue
			}
			out = append(out, l)
		}
	}
	var gone []string
	for key := range f.expected {
		if _, ok := f.hosts[key]; !ok {
			gone = append(gone, key)
		}
	}
	sort.Strings(gone)
	for _, key := range gone {
		name := strings.TrimPrefix(strings.TrimPrefix(key, f.prefix), "/")
		out = append(out, fleetLaggard{Host: name, State: "gone", Error: "its entry went: the agent stopped, or lost the store for longer than its status ttl"})
	}
	if len(f.hosts) < o.hosts {
		out = append(out, fleetLaggard{State: "missing", Error: fmt.Sprintf("%d of %d hosts (--hosts) publish under %s", len(f.hosts), o.hosts, f.prefix)})
	}
	return out
}

func (o fleetOptions) wants(template string) bool {
	return len(o.templates) == 0 || slices.Contains(o.templates, template)
}

// fleetStatus reads (and with --wait watches) the prefix, prints the rows
// and reports the laggards.
func fleetStatus(cmd *cobra.Command, cf *clientFlags, o fleetOptions) error {
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	f := &fleet{prefix: o.prefix}
	read := func(ctx context.Context) error {
		rctx, cancel := cf.commandContext(ctx)
		defer cancel()
		resp, err := cli.Get(rctx, o.prefix, clientv3.WithPrefix())
		if err != nil {
			return cf.requestError("read the fleet status under "+o.prefix, err)
		}
		f.rev, f.hosts = resp.Header.Revision, map[string]fleetHost{}
		for _, kv := range resp.Kvs {
			f.set(kv)
		}
		return nil
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	if err := read(ctx); err != nil {
		return err
	}
	if o.wait > 0 {
		f.expected = map[string]bool{}
		for key := range f.hosts {
			f.expected[key] = true
		}
		if err := waitFleet(ctx, cli, f, o, read); err != nil {
			return err
		}
	}
	var lag []fleetLaggard
	if o.revision > 0 {
		lag = f.laggards(o)
	}
	if err := printFleet(cmd.OutOrStdout(), cf.writeOut, f, o, lag); err != nil {
		return err
	}
	switch {
	case len(f.hosts) == 0 && len(f.expected) == 0:
		msg := "no agent publishes its status under " + o.prefix + " (give the agents a status block, or set --prefix to their status keys' prefix)"
		if o.revision > 0 {
			return errors.New(msg)
		}
		fmt.Fprintln(cmd.ErrOrStderr(), msg)
	case len(lag) > 0:
		return laggardError(lag, o)
	}
	return nil
}

// waitFleet watches the prefix from the read on until nothing lags or
// --wait passes. A watch that ends early (compaction, a lost stream) is
// followed by a fresh read.
func waitFleet(parent context.Context, cli *clientv3.Client, f *fleet, o fleetOptions, read func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, o.wait)
	defer cancel()
	done := func() bool { return len(f.hosts) > 0 && len(f.laggards(o)) == 0 }
	for !done() {
		if watchFleet(ctx, cli, f, done) || ctx.Err() != nil {
			return nil // reached, or --wait passed: report what lags
		}
		if err := read(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// watchFleet applies the prefix's changes after f.rev to f until done
// says so (true) or the watch ends (false: ctx is done, or the watch was
// cancelled, e.g. by a compaction, and f must be read again).
func watchFleet(parent context.Context, cli *clientv3.Client, f *fleet, done func() bool) bool {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	for resp := range cli.Watch(clientv3.WithRequireLeader(ctx), f.prefix, clientv3.WithPrefix(), clientv3.WithRev(f.rev+1)) {
		if resp.Err() != nil || resp.Canceled {
			return false
		}
		for _, ev := range resp.Events {
			f.apply(ev)
		}
		f.rev = max(f.rev, resp.Header.Revision)
		if done() {
			return true
		}
	}
	return false
}

// laggardError names what has not reached the revision, and what to do.
func laggardError(lag []fleetLaggard, o fleetOptions) error {
	var parts []string
	for i, l := range lag {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(lag)-i))
			break
		}
		name := l.Host
		if l.Template != "" {
			name += "/" + l.Template
		}
		switch l.State {
		case "missing":
			parts = append(parts, l.Error)
		case "behind":
			parts = append(parts, fmt.Sprintf("%s at revision %d (%s)", name, l.Revision, l.Outcome))
		case "failed":
			parts = append(parts, fmt.Sprintf("%s %s at revision %d: %s", name, l.Outcome, l.Revision, oneLine(l.Error, 200)))
		default:
			parts = append(parts, fmt.Sprintf("%s %s: %s", name, l.State, l.Error))
		}
	}
	states := map[string]bool{}
	for _, l := range lag {
		states[l.State] = true
	}
	var hints []string
	if states["failed"] || states["invalid"] {
		hints = append(hints, "fix what the error says on those hosts and put the change again")
	}
	if states["behind"] || states["missing"] || states["gone"] {
		if o.wait > 0 {
			hints = append(hints, "wait longer than --wait "+o.wait.String())
		} else {
			hints = append(hints, "give --wait 2m to wait for the agents")
		}
	}
	if states["behind"] && len(o.templates) == 0 {
		hints = append(hints, "a template that does not read the changed keys keeps its older revision: name the ones to check with --template")
	}
	if states["gone"] || states["missing"] {
		hints = append(hints, "start the missing hosts' agents, with a status block")
	}
	what := strings.Join(hints, "; ")
	return fmt.Errorf("revision %d not reached: %s (%s)", o.revision, strings.Join(parts, "; "), what)
}

var fleetHeader = []string{"host", "template", "revision", "outcome", "applied", "error"}

// printFleet writes the hosts as rows (or JSON) to w.
func printFleet(w io.Writer, format string, f *fleet, o fleetOptions, lag []fleetLaggard) error {
	hosts := f.sorted()
	if format == "json" {
		r := fleetReport{Prefix: o.prefix, HeaderRevision: f.rev, Revision: o.revision, Hosts: hosts, Laggards: lag}
		if r.Hosts == nil {
			r.Hosts = []fleetHost{}
		}
		return printJSON(w, r)
	}
	state := map[string]string{}
	for _, l := range lag {
		state[l.Host+"\x00"+l.Template] = l.State
	}
	header := fleetHeader
	if o.revision > 0 {
		header = append(slices.Clone(fleetHeader), "state")
	}
	now := time.Now()
	var rows [][]string
	for _, h := range hosts {
		mark := func(template string) []string {
			if o.revision == 0 {
				return nil
			}
			if s := state[h.Name+"\x00"+template]; s != "" {
				return []string{s}
			}
			return []string{"ok"}
		}
		if h.Status == nil {
			rows = append(rows, append([]string{h.Name, "-", "-", "invalid", "-", oneLine(h.Invalid, 80)}, mark("")...))
			continue
		}
		n := 0
		for _, s := range h.Status.Templates {
			if !o.wants(s.Template) {
				continue
			}
			n++
			rows = append(rows, append([]string{h.Name, s.Template, strconv.FormatInt(s.Revision, 10), s.Outcome, ago(now, s.AppliedAt), oneLine(s.Error, 80)}, mark(s.Template)...))
		}
		if n == 0 && len(o.templates) == 0 {
			rows = append(rows, append([]string{h.Name, "-", "-", "-", "-", ""}, mark("-")...))
		}
	}
	for _, l := range lag {
		if l.State == "gone" {
			rows = append(rows, append([]string{l.Host, "-", "-", "-", "-", oneLine(l.Error, 80)}, "gone"))
		}
	}
	if format == "table" {
		printTable(w, header, rows)
		return nil
	}
	printRows(w, rows)
	return nil
}

// ago says how long before now t was, in the largest whole unit; "-" for
// the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		s = string(r[:n-3]) + "..."
	}
	return s
}
