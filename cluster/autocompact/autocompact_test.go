package autocompact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// harness runs a policy against a fake clock and a target whose revision,
// leadership and compaction errors the test sets between ticks.
type harness struct {
	t     *testing.T
	clk   *clockwork.FakeClock
	start time.Time
	done  chan struct{}

	mu     sync.Mutex
	rev    int64
	leader bool
	fail   error // returned by the next Compact
	calls  []string
}

func run(t *testing.T, p Policy, rev int64) *harness {
	h := &harness{t: t, clk: clockwork.NewFakeClock(), rev: rev, leader: true, done: make(chan struct{})}
	h.start = h.clk.Now()
	ctx, cancel := context.WithCancel(context.Background())
	target := Target{
		Rev:    func() int64 { h.mu.Lock(); defer h.mu.Unlock(); return h.rev },
		Leader: func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.leader },
		Compact: func(_ context.Context, rev int64) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			err := h.fail
			h.fail = nil
			outcome := "ok"
			if err != nil {
				outcome = err.Error()
			}
			h.calls = append(h.calls, fmt.Sprintf("%s:%d:%s", h.clk.Since(h.start), rev, outcome))
			return err
		},
	}
	go func() {
		defer close(h.done)
		Run(ctx, p, target, h.clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// waiting blocks until the loop waits on the clock again.
func (h *harness) waiting() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.clk.BlockUntilContext(ctx, 1); err != nil {
		h.t.Fatalf("the compactor does not wait on its clock: %v", err)
	}
}

// tick lets the loop reach its wait, calls set, and moves the clock by d.
func (h *harness) tick(d time.Duration, set func()) {
	h.t.Helper()
	h.waiting()
	h.mu.Lock()
	if set != nil {
		set()
	}
	h.mu.Unlock()
	h.clk.Advance(d)
}

// compactions returns the calls so far, once the loop waits again.
func (h *harness) compactions() []string {
	h.t.Helper()
	h.waiting()
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *harness) want(want ...string) {
	h.t.Helper()
	if got := h.compactions(); !slices.Equal(got, want) {
		h.t.Fatalf("compactions (time:revision:outcome) = %v, want %v", got, want)
	}
}

// Periodic, 10s: nothing for the first period; then every period, the
// revision sampled a period ago (the oldest of the window). The revision
// at second s is 100+s.
func TestPeriodic(t *testing.T) {
	h := run(t, Policy{Mode: Periodic, Period: 10 * time.Second}, 100)
	for s := int64(1); s <= 30; s++ {
		h.tick(time.Second, func() { h.rev = 100 + s })
		if s == 9 {
			h.want() // nothing before a whole period
		}
	}
	h.want("10s:100:ok", "20s:109:ok", "30s:119:ok")
}

// A follower does not compact, but keeps sampling: once it leads, it
// compacts at once to the revision of a period ago.
func TestPeriodicOnlyLeaderCompacts(t *testing.T) {
	h := run(t, Policy{Mode: Periodic, Period: 10 * time.Second}, 100)
	for s := int64(1); s <= 26; s++ {
		h.tick(time.Second, func() {
			h.rev = 100 + s
			h.leader = s < 15 || s >= 26
		})
	}
	h.want("10s:100:ok", "26s:115:ok")
}

// A failed compaction is tried again at the next sample; an already
// compacted revision counts as done.
func TestPeriodicRetries(t *testing.T) {
	h := run(t, Policy{Mode: Periodic, Period: 10 * time.Second}, 100)
	for s := int64(1); s <= 21; s++ {
		h.tick(time.Second, func() {
			h.rev = 100 + s
			switch s {
			case 10:
				h.fail = errors.New("etcdserver: request timed out")
			case 21:
				h.fail = fmt.Errorf("compact: %w", ErrCompacted)
			}
		})
	}
	h.tick(time.Second, func() { h.rev = 122 })
	h.want("10s:100:etcdserver: request timed out", "11s:100:ok", "21s:110:compact: revision already compacted")
}

// Periods over an hour sample every six minutes and compact hourly.
func TestPeriodicLong(t *testing.T) {
	h := run(t, Policy{Mode: Periodic, Period: 24 * time.Hour}, 1)
	for i := int64(1); i <= 250; i++ { // 25 hours
		h.tick(6*time.Minute, func() { h.rev = 1 + i })
	}
	// Compacted at 24h to the first sample, and at 25h to the oldest of
	// the 241 samples before it: the one at 54m (revision 10), 24h6m
	// earlier.
	h.want("24h0m0s:1:ok", "25h0m0s:10:ok")
}

// Revision: every five minutes, keep the newest Revisions; nothing when
// that would be revision 0 or less, or the same as last time.
func TestRevision(t *testing.T) {
	h := run(t, Policy{Mode: Revision, Revisions: 100}, 50)
	for _, rev := range []int64{1000, 1000, 1500, 1501} {
		h.tick(5*time.Minute, nil) // compacts rev set before this tick
		h.tick(0, func() { h.rev = rev })
	}
	h.tick(5*time.Minute, nil)
	h.want("10m0s:900:ok", "20m0s:1400:ok", "25m0s:1401:ok")
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		mode, retention string
		want            Policy
		err             string
	}{
		{"periodic", "0", Policy{Mode: Periodic}, ""},
		{"periodic", "1", Policy{Mode: Periodic, Period: time.Hour}, ""},
		{"periodic", "72", Policy{Mode: Periodic, Period: 72 * time.Hour}, ""},
		{"periodic", "30m", Policy{Mode: Periodic, Period: 30 * time.Minute}, ""},
		{"periodic", "5s", Policy{Mode: Periodic, Period: 5 * time.Second}, ""},
		{"revision", "10000", Policy{Mode: Revision, Revisions: 10000}, ""},
		{"revision", "0", Policy{Mode: Revision}, ""},
		{"periodic", "1x", Policy{}, `--auto-compaction-retention "1x": give a duration (e.g. 30m or 1h) or a whole number of hours`},
		{"periodic", "-1", Policy{}, `--auto-compaction-retention "-1": cannot be negative`},
		{"periodic", "-5m", Policy{}, `--auto-compaction-retention "-5m": give a duration`},
		{"revision", "1h", Policy{}, `--auto-compaction-retention "1h": with --auto-compaction-mode revision, give the number of revisions to keep`},
		{"hourly", "1", Policy{}, `--auto-compaction-mode "hourly": want "periodic" or "revision"`},
		{"", "1", Policy{}, `--auto-compaction-mode "": want`},
	} {
		got, err := Parse(c.mode, c.retention)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Parse(%q, %q) = %v, %v; want error %q", c.mode, c.retention, got, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("Parse(%q, %q) = %+v, %v; want %+v", c.mode, c.retention, got, err, c.want)
		}
	}
	if (Policy{Mode: Periodic}).Enabled() || (Policy{Mode: Revision}).Enabled() || !(Policy{Mode: Revision, Revisions: 1}).Enabled() {
		t.Error("Enabled: a zero retention must be off, a positive one on")
	}
}

// A disabled policy returns at once.
func TestOff(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), Policy{Mode: Periodic}, Target{}, clockwork.NewFakeClock(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run with retention 0 did not return")
	}
}
