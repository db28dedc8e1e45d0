package autocompact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jonboulle/clockwork"
)

// Mode is how a retention is read: etcd's --auto-compaction-mode.
type Mode string

const (
	// Periodic keeps a duration of history.
	Periodic Mode = "periodic"
	// Revision keeps a number of revisions.
	Revision Mode = "revision"
)

// Policy is what to keep; the zero Policy compacts nothing.
type Policy struct {
	Mode      Mode
	Period    time.Duration // Periodic
	Revisions int64         // Revision
}

// Enabled reports whether the policy compacts at all.
func (p Policy) Enabled() bool {
	return (p.Mode == Periodic && p.Period > 0) || (p.Mode == Revision && p.Revisions > 0)
}

func (p Policy) String() string {
	switch {
	case !p.Enabled():
		return "off"
	case p.Mode == Periodic:
		return "keep " + p.Period.String()
	}
	return fmt.Sprintf("keep %d revisions", p.Revisions)
}

// Parse reads etcd's two flags. In periodic mode the retention is a
// duration ("30m", "1h") or a whole number of hours ("1"); in revision
// mode, a number of revisions. "0" turns compaction off.
func Parse(mode, retention string) (Policy, error) {
	p := Policy{Mode: Mode(mode)}
	switch p.Mode {
	case Periodic, Revision:
	default:
		return Policy{}, fmt.Errorf("--auto-compaction-mode %q: want %q or %q", mode, Periodic, Revision)
	}
	n, err := strconv.ParseInt(retention, 10, 64)
	switch {
	case err == nil && n < 0:
		return Policy{}, fmt.Errorf("--auto-compaction-retention %q: cannot be negative (0 turns auto compaction off)", retention)
	case err == nil && p.Mode == Revision:
		p.Revisions = n
	case err == nil:
		if n > int64(maxPeriod/time.Hour) {
			return Policy{}, fmt.Errorf("--auto-compaction-retention %q: %d hours is too long (at most %d)", retention, n, int64(maxPeriod/time.Hour))
		}
		p.Period = time.Duration(n) * time.Hour
	case p.Mode == Revision:
		return Policy{}, fmt.Errorf("--auto-compaction-retention %q: with --auto-compaction-mode revision, give the number of revisions to keep (e.g. 10000)", retention)
	default:
		d, err := time.ParseDuration(retention)
		if err != nil || d < 0 {
			return Policy{}, fmt.Errorf("--auto-compaction-retention %q: give a duration (e.g. 30m or 1h) or a whole number of hours; 0 turns auto compaction off", retention)
		}
		p.Period = d
	}
	return p, nil
}

// maxPeriod keeps hours times time.Hour from overflowing.
const maxPeriod = 100 * 365 * 24 * time.Hour

// revisionInterval is how often Revision mode compacts (etcd's).
const revisionInterval = 5 * time.Minute

// Target is what Run compacts.
type Target struct {
	// Rev is the current revision.
	Rev func() int64
	// Compact compacts the keyspace to rev, through Raft. It reports
	// ErrCompacted when rev is already compacted, which counts as done.
	Compact func(ctx context.Context, rev int64) error
	// Leader reports whether this member leads: only the leader compacts.
	Leader func() bool
}

// ErrCompacted is what Target.Compact returns for a revision compacted
// already.
var ErrCompacted = errors.New("revision already compacted")

// Run compacts t under p until ctx ends. It returns at once when p is not
// enabled.
func Run(ctx context.Context, p Policy, t Target, clk clockwork.Clock, log *slog.Logger) {
	switch {
	case !p.Enabled():
		return
	case p.Mode == Periodic:
		runPeriodic(ctx, p.Period, t, clk, log)
	default:
		runRevision(ctx, p.Revisions, t, clk, log)
	}
}

// runPeriodic is etcd's periodic compactor (see the package doc).
func runPeriodic(ctx context.Context, period time.Duration, t Target, clk clockwork.Clock, log *slog.Logger) {
	every := min(period, time.Hour)
	sample := every / 10
	// The window holds the samples of one period: its oldest is the
	// revision of a period ago.
	size := int(period/sample) + 1
	window := make([]int64, 0, size)
	last, lastAt, wait := int64(0), clk.Now(), period
	for {
		window = append(window, t.Rev())
		if len(window) > size {
			window = window[1:]
		}
		select {
		case <-ctx.Done():
			return
		case <-clk.After(sample):
		}
		rev := window[0]
		if !t.Leader() || clk.Now().Sub(lastAt) < wait || rev == last {
			continue
		}
		wait = every
		if compact(ctx, t, rev, log, "keep", period.String()) {
			last, lastAt = rev, clk.Now()
		}
	}
}

// runRevision is etcd's revision compactor: every five minutes, keep the
// newest keep revisions.
func runRevision(ctx context.Context, keep int64, t Target, clk clockwork.Clock, log *slog.Logger) {
	last := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-clk.After(revisionInterval):
		}
		rev := t.Rev() - keep
		if !t.Leader() || rev <= 0 || rev == last {
			continue
		}
		if compact(ctx, t, rev, log, "keep-revisions", keep) {
			last = rev
		}
	}
}

// compact compacts to rev and logs the outcome; it reports success.
func compact(ctx context.Context, t Target, rev int64, log *slog.Logger, keepKey string, keep any) bool {
	start := time.Now()
	err := t.Compact(ctx, rev)
	switch {
	case err == nil || errors.Is(err, ErrCompacted):
		log.Info("auto compaction done", "revision", rev, keepKey, keep, "took", time.Since(start))
		return true
	case ctx.Err() == nil:
		log.Warn("auto compaction failed; trying again later", "revision", rev, keepKey, keep, "err", err)
	}
	return false
}
