package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/testenv"
)

// TestOutputMatchesEtcdctl runs tend's client and the real etcdctl with the
// same arguments against the same server and requires the same stdout, except
// where README.md documents a difference.
func TestOutputMatchesEtcdctl(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	ctl := func(args ...string) (string, error) {
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", serverEndpoint(t)}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%w: %s", err, errb.String())
		}
		return out.String(), nil
	}
	ok(t, nil, "put", "/ctl/a", "1")
	ok(t, nil, "put", "/ctl/b", "two words")
	ok(t, []byte("multi\nline\n"), "put", "/ctl/c")
	id := grantLease(t, 300)
	ok(t, nil, "put", "--lease", id, "/ctl/leased", "x")

	same := [][]string{
		{"get", "--prefix", "/ctl/"},
		{"get", "--prefix", "--print-value-only", "/ctl/"},
		{"get", "--prefix", "--limit", "2", "--order", "DESCEND", "/ctl/"},
		{"get", "/ctl/a", "/ctl/c"},
		{"get", "-w", "json", "/ctl/a"},
		{"get", "-w", "json", "--prefix", "/ctl/"},
		{"get", "-w", "json", "/ctl/missing"},
		{"put", "/ctl/w", "v"},
		{"put", "--prev-kv", "/ctl/w", "v"},
		{"put", "-w", "json", "/ctl/w", "v"},
		{"del", "/ctl/nothing"},
		{"del", "-w", "json", "/ctl/nothing"},
		{"member", "list"},
		{"member", "list", "-w", "json"},
		{"lease", "timetolive", "--keys", id},
		{"lease", "keep-alive", "--once", id},
	}
	for _, args := range same {
		want, err := ctl(args...)
		if err != nil {
			t.Errorf("etcdctl %q: %v", args, err)
			continue
		}
		got := ok(t, nil, args...)
		if strings.Contains(got, "remaining(") {
			// The remaining TTL ticks between the two calls.
			re := regexp.MustCompile(`remaining\(\d+s\)`)
			got, want = re.ReplaceAllString(got, "remaining(Ns)"), re.ReplaceAllString(want, "remaining(Ns)")
		}
		if slices.Contains(args, "json") {
			re := regexp.MustCompile(`"revision":\d+`)
			got, want = re.ReplaceAllString(got, `"revision":R`), re.ReplaceAllString(want, `"revision":R`)
		}
		if got != want {
			t.Errorf("tend %q:\n got %q\netcdctl %q", args, got, want)
		}
	}

	// Documented differences: a single key prints its bare value, and
	// --keys-only prints no blank lines.
	if got, want := ok(t, nil, "get", "/ctl/b"), "two words"; got != want {
		t.Errorf("tend get /ctl/b = %q, want %q", got, want)
	}
	if want, _ := ctl("get", "/ctl/b"); want != "/ctl/b\ntwo words\n" {
		t.Errorf("etcdctl get /ctl/b = %q; README's description of the difference is out of date", want)
	}
	if want, _ := ctl("get", "--prefix", "--keys-only", "/ctl/"); !strings.Contains(want, "/ctl/a\n\n") {
		t.Errorf("etcdctl --keys-only = %q; README's description of the difference is out of date", want)
	}
}

// tend endpoint hashkv prints what etcdctl's does, against a private etcd
// and a private tend member (no other test writes between the two calls),
// with and without --rev; on a three-member tend cluster every member
// reports the same hash.
func TestEndpointHashKVMatchesEtcdctl(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	etcdEP, stopEtcd, err := startEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stopEtcd()
	tendEP, stopTend, err := startTendMember(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stopTend()
	for _, ep := range []string{etcdEP, tendEP} {
		for i := range 3 {
			okAt(t, ep, "put", fmt.Sprint("/hk/", i), fmt.Sprint("v", i))
		}
		for _, args := range [][]string{{"endpoint", "hashkv"}, {"endpoint", "hashkv", "-w", "json"}, {"endpoint", "hashkv", "--rev", "3"}} {
			want, err := exec.Command(etcdctl, append([]string{"--endpoints", ep}, args...)...).Output()
			if err != nil {
				t.Fatalf("etcdctl %q: %v", args, err)
			}
			if got := okAt(t, ep, args...); got != string(want) {
				t.Errorf("tend %q against %s:\n got %q\netcdctl %q", args, ep, got, want)
			}
		}
	}

	// A follower may not have applied the last put yet: ask until every
	// member has, then they must agree.
	up := startClusterUp(t, t.TempDir())
	okAt(t, up.eps[0], "put", "/hk/c", "v")
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := strings.Split(strings.TrimSpace(okAt(t, up.eps[0], "endpoint", "hashkv", "--cluster")), "\n")
		if len(lines) != 3 {
			t.Fatalf("endpoint hashkv --cluster printed %q, want one line per member", lines)
		}
		same := true
		for _, l := range lines[1:] {
			_, rest, _ := strings.Cut(l, ", ")
			same = same && rest == strings.SplitN(lines[0], ", ", 2)[1]
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members disagree for 10s: %q", lines)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
