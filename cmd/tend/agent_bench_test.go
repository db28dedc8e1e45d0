package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// tend bench agent --templates runs a real agent process and reports what
// it cost; bad values are refused naming the flag.
func TestBenchAgentFootprint(t *testing.T) {
	for _, ep := range []struct{ name, url string }{{"etcd", etcdEndpoint}, {"tend", tendEndpoint}} {
		t.Run(ep.name, func(t *testing.T) {
			r := tendAt(t, ep.url, nil, "bench", "agent", "--templates", "5", "--keys", "50", "--val-size", "16",
				"--idle", "200ms", "--changes", "3", "-w", "json")
			if r.err != nil {
				t.Fatalf("bench agent --templates: %v\n%s", r.err, r.stderr)
			}
			var rep struct {
				Templates, Keys, Changes int
				RSS                      int64   `json:"rss_bytes"`
				Anon                     int64   `json:"anon_rss_bytes"`
				File                     int64   `json:"file_rss_bytes"`
				Peak                     int64   `json:"peak_rss_bytes"`
				IdleCPU                  float64 `json:"idle_cpu"`
				FirstRender              int64   `json:"first_render_ns"`
				FirstChange              int64   `json:"first_change_ns"`
				ChangeP50                int64   `json:"change_p50_ns"`
			}
			if err := json.Unmarshal(r.stdout, &rep); err != nil {
				t.Fatalf("decode %s: %v", r.stdout, err)
			}
			if rep.Templates != 5 || rep.Keys != 50 || rep.Changes != 3 {
				t.Errorf("report %s: want 5 templates, 50 keys, 3 changes", r.stdout)
			}
			// A Go process has a resident set of at least a megabyte, and
			// the split adds up.
			if rep.RSS < 1<<20 || rep.Peak < rep.RSS || rep.Anon == 0 || rep.File == 0 || rep.Anon+rep.File > rep.RSS {
				t.Errorf("memory in report %s does not add up", r.stdout)
			}
			if rep.IdleCPU < 0 || rep.IdleCPU > 1 || rep.FirstRender <= 0 || rep.FirstChange <= 0 || rep.ChangeP50 <= 0 {
				t.Errorf("report %s: idle CPU, first render or change latencies out of range", r.stdout)
			}
		})
	}
	r := tendAt(t, etcdEndpoint, nil, "bench", "agent", "--templates", "10", "--keys", "5")
	if r.err == nil || !strings.Contains(string(r.stderr), "--keys 5: need at least one per template (--templates 10)") {
		t.Errorf("--keys below --templates: %v %s", r.err, r.stderr)
	}
}
