package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/internal/etcdtest"
)

// status is the JSON of a host's status with templates given as
// name:revision or name:revision:outcome (applied when left out).
func status(t testing.TB, templates ...string) []byte {
	t.Helper()
	hs := agent.HostStatus{Templates: []agent.Status{}}
	for _, spec := range templates {
		var s agent.Status
		parts := strings.Split(spec, ":")
		s.Template, s.Outcome = parts[0], "applied"
		if _, err := fmt.Sscan(parts[1], &s.Revision); err != nil {
			t.Fatalf("template %q: %v", spec, err)
		}
		if len(parts) > 2 {
			s.Outcome, s.Error = parts[2], "the "+parts[2]+" error"
		}
		hs.Templates = append(hs.Templates, s)
	}
	b, err := json.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putEvent(key string, value []byte) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypePut, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: value}}
}

func deleteEvent(key string) *clientv3.Event {
	return &clientv3.Event{Type: clientv3.EventTypeDelete, Kv: &mvccpb.KeyValue{Key: []byte(key)}}
}

// summary is what the view says in one line: "reached", or its laggards
// as host[/template] state, or "empty" when nothing lags and yet no host
// publishes.
func summary(v *View) string {
	if v.Reached() {
		return "reached"
	}
	var parts []string
	for _, l := range v.Laggards() {
		name := l.Host
		if l.Template != "" {
			name += "/" + l.Template
		}
		parts = append(parts, strings.TrimPrefix(name+" "+l.State, " "))
	}
	if len(parts) == 0 {
		return "empty"
	}
	return strings.Join(parts, "; ")
}

// checkCounts fails if what the view keeps up to date differs from what
// its entries say when counted afresh, or if Reached and Laggards
// disagree.
func checkCounts(t *testing.T, v *View, at string) {
	t.Helper()
	lagging, gone := 0, 0
	for _, e := range v.hosts {
		lagging += len(v.opts.appendLaggards(nil, e.Host))
	}
	for key := range v.expected {
		if _, ok := v.hosts[key]; !ok {
			gone++
		}
	}
	if v.lagging != lagging || v.gone != gone {
		t.Fatalf("%s: the view counts %d lagging and %d gone, its entries %d and %d", at, v.lagging, v.gone, lagging, gone)
	}
	if want := len(v.Hosts()) > 0 && len(v.Laggards()) == 0; v.Reached() != want {
		t.Fatalf("%s: Reached() = %v with %d hosts and laggards %+v", at, v.Reached(), len(v.Hosts()), v.Laggards())
	}
}

// A scripted scenario: each step changes the view and says what it then
// reports.
type step struct {
	put, del string // the key to put (with value) or delete
	value    []byte
	expect   bool               // start waiting: the keys present are expected
	reread   []*mvccpb.KeyValue // read again: the entries are these
	want     string             // the summary after the step
}

func TestViewScenarios(t *testing.T) {
	const p = "/fleet/"
	invalid := []byte("{not json")
	for _, tc := range []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"set and overwrite", Options{Prefix: p, Revision: 5}, []step{
			{put: p + "a", value: status(t, "app:4"), want: "a/app behind"},
			{put: p + "a", value: status(t, "app:5"), want: "reached"},
			{put: p + "b", value: status(t, "app:5", "web:3"), want: "b/web behind"},
			{put: p + "b", value: status(t, "app:6", "web:5:unchanged"), want: "reached"},
		}},
		{"failed at any revision", Options{Prefix: p, Revision: 5}, []step{
			{put: p + "a", value: status(t, "app:6:check-failed"), want: "a/app failed"},
			{put: p + "a", value: status(t, "app:6:pending"), want: "reached"},
			{put: p + "a", value: status(t, "app:4:rolled-back"), want: "a/app failed"},
		}},
		{"invalid entry", Options{Prefix: p, Revision: 5}, []step{
			{put: p + "a", value: invalid, want: "a invalid"},
			{put: p + "b", value: status(t, "app:5"), want: "a invalid"},
			{put: p + "a", value: status(t, "app:5"), want: "reached"},
		}},
		{"delete without waiting", Options{Prefix: p, Revision: 5}, []step{
			{put: p + "a", value: status(t, "app:5"), want: "reached"},
			{put: p + "b", value: status(t, "app:4"), want: "b/app behind"},
			{del: p + "b", want: "reached"},
			{del: p + "a", want: "empty"},
			{del: p + "a", want: "empty"},
		}},
		{"gone while waiting", Options{Prefix: p, Revision: 5}, []step{
			{put: p + "a", value: status(t, "app:4"), want: "a/app behind"},
			{put: p + "b", value: status(t, "app:4"), want: "a/app behind; b/app behind"},
			{expect: true, want: "a/app behind; b/app behind"},
			{put: p + "a", value: status(t, "app:5"), want: "b/app behind"},
			{del: p + "b", want: "b gone"},
			{put: p + "b", value: status(t, "app:5"), want: "reached"},
			{put: p + "c", value: status(t, "app:5"), want: "reached"},
			{del: p + "c", want: "reached"},
			{del: p + "b", want: "b gone"},
			{reread: []*mvccpb.KeyValue{{Key: []byte(p + "a"), Value: status(t, "app:5")}}, want: "b gone"},
			{del: p + "a", want: "a gone; b gone"},
			{reread: nil, want: "a gone; b gone"},
		}},
		{"fewer than hosts", Options{Prefix: p, Revision: 5, Hosts: 3}, []step{
			{put: p + "a", value: status(t, "app:5"), want: "missing"},
			{put: p + "b", value: status(t, "app:5"), want: "missing"},
			{put: p + "c", value: status(t, "app:4"), want: "c/app behind"},
			{put: p + "c", value: status(t, "app:5"), want: "reached"},
			{del: p + "b", want: "missing"},
		}},
		{"template filter", Options{Prefix: p, Revision: 5, Templates: []string{"app"}}, []step{
			{put: p + "a", value: status(t, "app:5", "web:1:render-failed"), want: "reached"},
			{put: p + "a", value: status(t, "web:5"), want: "reached"},
			{put: p + "a", value: status(t, "app:4", "web:5"), want: "a/app behind"},
			{put: p + "b", value: invalid, want: "a/app behind; b invalid"},
		}},
		{"an empty view is not reached", Options{Prefix: p, Revision: 5}, []step{
			{expect: true, want: "empty"},
			{put: p + "a", value: status(t, "app:5"), want: "reached"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := NewView(tc.opts)
			for i, s := range tc.steps {
				switch {
				case s.put != "":
					v.Apply(putEvent(s.put, s.value))
				case s.del != "":
					v.Apply(deleteEvent(s.del))
				case s.expect:
					v.expect()
				default:
					v.load(v.rev+1, s.reread)
				}
				at := fmt.Sprintf("step %d", i+1)
				checkCounts(t, v, at)
				if got := summary(v); got != s.want {
					t.Errorf("%s: %s, want %s", at, got, s.want)
				}
			}
		})
	}
}

// An entry that is not a status says why, and is named by the key below
// the prefix; a key that is the prefix itself is named in full.
func TestViewNames(t *testing.T) {
	v := NewView(Options{Prefix: "/fleet"})
	v.Apply(putEvent("/fleet/a", []byte("{")))
	v.Apply(putEvent("/fleet", status(t)))
	hosts := v.Hosts()
	if len(hosts) != 2 || hosts[0].Name != "/fleet" || hosts[1].Name != "a" {
		t.Fatalf("hosts %+v, want /fleet and a", hosts)
	}
	if !strings.HasPrefix(hosts[1].Invalid, "not an agent's status: ") || hosts[1].Status != nil {
		t.Errorf("invalid entry %+v, want no status and why", hosts[1])
	}
}

// Random sequences of puts, deletes, re-reads and the start of a wait,
// with a fixed seed: after every step the counts the view keeps match its
// entries, and Reached agrees with Laggards.
func TestViewAgreesWithLaggards(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	templates := []string{"app", "web", "db"}
	outcomes := []string{"applied", "applied", "applied", "unchanged", "pending", "check-failed"}
	randomValue := func() []byte {
		if r.IntN(10) == 0 {
			return []byte("{not json")
		}
		var specs []string
		for _, name := range templates[:r.IntN(len(templates)+1)] {
			specs = append(specs, fmt.Sprintf("%s:%d:%s", name, 4+r.IntN(3), outcomes[r.IntN(len(outcomes))]))
		}
		return status(t, specs...)
	}
	filters := [][]string{nil, {"app"}, {"web", "db"}}
	reached := 0
	const runs, steps = 50, 200
	for run := range runs {
		o := Options{Prefix: "/fleet/", Revision: 5, Templates: filters[r.IntN(len(filters))], Hosts: r.IntN(4)}
		v := NewView(o)
		for i := range steps {
			key := fmt.Sprintf("/fleet/h%d", r.IntN(6))
			switch n := r.IntN(20); {
			case n < 12:
				v.Apply(putEvent(key, randomValue()))
			case n < 17:
				v.Apply(deleteEvent(key))
			case n < 18:
				v.expect()
			default:
				var kvs []*mvccpb.KeyValue
				for h := range 6 {
					if r.IntN(2) == 0 {
						kvs = append(kvs, &mvccpb.KeyValue{Key: fmt.Appendf(nil, "/fleet/h%d", h), Value: randomValue()})
					}
				}
				v.load(v.rev+1, kvs)
			}
			checkCounts(t, v, fmt.Sprintf("run %d step %d (%+v)", run, i, o))
			if v.Reached() {
				reached++
			}
		}
	}
	// Both answers must come up for the agreement to mean something.
	if reached == 0 || reached == runs*steps {
		t.Fatalf("reached after %d of %d steps; the sequences do not test both answers", reached, runs*steps)
	}
}

// Over a real watch: Wait returns once every host reaches the revision,
// and a host whose entry goes while waiting is gone, across a compaction
// that ends the watch and makes Wait read again.
func TestWait(t *testing.T) {
	e := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir()})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdtest.ClientAddr(e)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(key string, value []byte) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, key, string(value))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}

	// start puts the hosts' entries at revision 1, and then (beside the
	// prefix) the change they must reach; it returns a view read after
	// that.
	start := func(t *testing.T, p string, hosts ...string) *View {
		t.Helper()
		for _, h := range hosts {
			put(p+h, status(t, "app:1"))
		}
		v := NewView(Options{Prefix: p, Revision: put(p[:len(p)-1]+"-change", nil), Hosts: len(hosts), Timeout: 5 * time.Second})
		if err := v.Read(ctx, cli); err != nil {
			t.Fatal(err)
		}
		return v
	}
	reach := func(v *View, host string) { put(v.opts.Prefix+host, status(t, fmt.Sprintf("app:%d", v.opts.Revision))) }

	t.Run("reached", func(t *testing.T) {
		v := start(t, "/reached/", "a", "b")
		reach(v, "a")
		done := make(chan struct{})
		go func() {
			defer close(done)
			reach(v, "b")
		}()
		begin := time.Now()
		err := v.Wait(ctx, cli, 20*time.Second)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if !v.Reached() || time.Since(begin) > 10*time.Second {
			t.Errorf("Wait returned after %s: %s, want reached at once", time.Since(begin), summary(v))
		}
	})

	t.Run("gone", func(t *testing.T) {
		v := start(t, "/gone/", "a", "b", "c")
		reach(v, "a")
		reach(v, "b")
		del, err := cli.Delete(ctx, "/gone/c")
		if err != nil {
			t.Fatal(err)
		}
		// The watch from after the read finds its revision compacted.
		if _, err := cli.Compact(ctx, del.Header.Revision); err != nil {
			t.Fatal(err)
		}
		if err := v.Wait(ctx, cli, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := summary(v); got != "c gone; missing" {
			t.Errorf("after Wait: %s, want c gone and 2 of 3 hosts", got)
		}
	})
}

// The fleet reader reaches the store only through clientv3, as the agent
// does: neither it nor anything it imports may import tend's store,
// cluster or commands.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/tendkv/tend/store", "github.com/tendkv/tend/cluster", "github.com/tendkv/tend/cmd"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("package fleet imports %s; it must use clientv3 only", pkg)
			}
		}
	}
}

// rolloutEvents are n hosts' entries with one template at rev.
func rolloutEvents(b *testing.B, n int, rev int64) []*clientv3.Event {
	evs := make([]*clientv3.Event, n)
	for i := range evs {
		evs[i] = putEvent(fmt.Sprintf("/fleet/host-%05d", i), status(b, fmt.Sprintf("app:%d", rev)))
		evs[i].Kv.ModRevision = rev
	}
	return evs
}

// A rollout: n hosts at revision 1, then each applies the change at
// revision 2, one event each, with Reached asked after each as Wait does.
// The cost per host stays the same as n grows.
func BenchmarkRollout(b *testing.B) {
	for _, n := range []int{500, 5000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			before, after := rolloutEvents(b, n, 1), rolloutEvents(b, n, 2)
			for b.Loop() {
				v := NewView(Options{Prefix: "/fleet/", Revision: 2, Hosts: n})
				for _, ev := range before {
					v.Apply(ev)
				}
				v.expect()
				for i, ev := range after {
					v.Apply(ev)
					if v.Reached() != (i == n-1) {
						b.Fatalf("reached after %d of %d hosts", i+1, n)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/host")
		})
	}
}
