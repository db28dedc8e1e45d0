package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tendkv/tend/bench"
)

// tend bench fleet runs simulated agents against tend and etcd alike:
// every agent receives every rollout and publishes it, every lease is kept
// alive, and nothing is left behind; bad values are refused naming the
// flag.
func TestBenchFleet(t *testing.T) {
	for _, ep := range []struct{ name, url string }{{"etcd", etcdEndpoint}, {"tend", tendEndpoint}} {
		t.Run(ep.name, func(t *testing.T) {
			const agents, rollouts = 30, 3
			r := tendAt(t, ep.url, nil, "bench", "fleet", "--agents", "30", "--rollouts", "3", "--ttl", "2s", "-w", "json")
			if r.err != nil {
				t.Fatalf("bench fleet: %v\n%s", r.err, r.stderr)
			}
			var rep bench.FleetReport
			if err := json.Unmarshal(r.stdout, &rep); err != nil {
				t.Fatalf("decode %s: %v", r.stdout, err)
			}
			if rep.Agents != agents || rep.Conns != agents || rep.Rollouts != rollouts || rep.Errors != 0 {
				t.Errorf("report %s: want %d agents on their own connections, %d rollouts, no errors", r.stdout, agents, rollouts)
			}
			// Every agent saw and published every rollout.
			for name, p := range map[string]bench.Percentiles{"deliver": rep.Deliver, "status": rep.Status} {
				if p.N != agents*rollouts || !(p.P50 > 0 && p.P50 <= p.P99 && p.P99 <= p.Max) {
					t.Errorf("%s = %+v, want %d ordered samples", name, p, agents*rollouts)
				}
			}
			if rep.Rollout.N != rollouts || rep.Rollout.Max < rep.Status.P50 || rep.Join <= 0 {
				t.Errorf("rollout = %+v, join %v: want %d rollouts, each at least as long as a status put", rep.Rollout, rep.Join, rollouts)
			}
			if rep.KeepAlives < agents {
				t.Errorf("%d keep-alive responses for %d leases", rep.KeepAlives, agents)
			}
			if out := okAt(t, ep.url, "get", "/bench-fleet/", "--prefix", "--keys-only"); strings.TrimSpace(out) != "" {
				t.Errorf("left behind under /bench-fleet/:\n%s", out)
			}
		})
	}
	r := tend(t, nil, "bench", "fleet", "--agents", "0")
	if r.err == nil || !strings.Contains(string(r.stderr), "--agents 0: need at least 1") {
		t.Errorf("bench fleet --agents 0: %v %s, want the flag named", r.err, r.stderr)
	}
	r = tend(t, nil, "bench", "fleet", "--kill-leader-before", "1")
	if r.err == nil || !strings.Contains(string(r.stderr), `--pids "": want process IDs`) {
		t.Errorf("bench fleet --kill-leader-before without --pids: %v %s, want --pids named", r.err, r.stderr)
	}
	r = tend(t, nil, "bench", "fleet", "--ttl", "1s")
	if r.err == nil || !strings.Contains(string(r.stderr), "--ttl 1s: give 2s or more") {
		t.Errorf("bench fleet --ttl 1s: %v %s, want the flag named", r.err, r.stderr)
	}
}

// With --kill-leader-before, tend bench fleet kills the leader of a real
// three-process cluster (tend cluster up) before a rollout: the watches on
// it (about a third, spread by the client's balancer) move to the other
// members, and every agent still publishes every rollout.
func TestBenchFleetLeaderKilled(t *testing.T) {
	up := startClusterUp(t, t.TempDir())
	pids := make([]string, len(up.pids))
	for i, p := range up.pids {
		pids[i] = strconv.Itoa(p)
	}
	const agents, rollouts = 30, 3
	r := tendAt(t, strings.Join(up.eps, ","), nil, "bench", "fleet", "--agents", "30", "--rollouts", "3", "--ttl", "5s",
		"--kill-leader-before", "2", "--pids", strings.Join(pids, ","), "-w", "json")
	if r.err != nil {
		t.Fatalf("bench fleet --kill-leader-before 2: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	var rep bench.FleetReport
	if err := json.Unmarshal(r.stdout, &rep); err != nil {
		t.Fatalf("decode %s: %v", r.stdout, err)
	}
	if rep.Killed == "" || !slices.Contains(up.eps, strings.TrimPrefix(rep.Killed, "http://")) && !slices.Contains(up.eps, rep.Killed) {
		t.Errorf("killed %q, want one of %v", rep.Killed, up.eps)
	}
	if rep.Rollout.N != rollouts || rep.Deliver.N != agents*rollouts || rep.Status.N != agents*rollouts || rep.Errors != 0 {
		t.Errorf("report %s: want %d rollouts each reaching all %d agents, no errors", r.stdout, rollouts, agents)
	}
}
