package compat

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/protobuf/proto"
)

// The Lock and Election services, step by step against etcd's: etcd serves
// them with clientv3/concurrency on an in-process client, so do we; these
// steps pin that the same calls give the same keys, revisions, blocking
// and errors. Leases get fixed IDs so that keys (name/<lease hex>) match.

const (
	leaseA = 0x1a
	leaseB = 0x2b
	leaseC = 0x3c
)

func lockCall(desc string, f func(ctx context.Context, l v3lockpb.LockClient) (proto.Message, error)) step {
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		return f(ctx, v3lockpb.NewLockClient(e.conn))
	}}
}

func lock(name string, lease int64) step {
	r := &v3lockpb.LockRequest{Name: []byte(name), Lease: lease}
	return lockCall("Lock "+txt(r), func(ctx context.Context, l v3lockpb.LockClient) (proto.Message, error) { return l.Lock(ctx, r) })
}

// lockBlocks asks for a lock that is held, with a deadline: the call must
// wait (and fail at the deadline), and the server must take its waiting key
// away again.
func lockBlocks(name string, lease int64) step {
	r := &v3lockpb.LockRequest{Name: []byte(name), Lease: lease}
	return lockCall("Lock (held elsewhere, 300ms deadline) "+txt(r), func(ctx context.Context, l v3lockpb.LockClient) (proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		return l.Lock(ctx, r)
	})
}

func unlock(key string) step {
	r := &v3lockpb.UnlockRequest{Key: []byte(key)}
	return lockCall("Unlock "+txt(r), func(ctx context.Context, l v3lockpb.LockClient) (proto.Message, error) { return l.Unlock(ctx, r) })
}

// lockHandover has a second caller wait for a held lock, then releases it
// with release, and returns what the waiter got. The waiter is seen
// waiting (its key exists) before the release.
func lockHandover(name string, lease int64, release step) step {
	r := &v3lockpb.LockRequest{Name: []byte(name), Lease: lease}
	return step{fmt.Sprintf("Lock %s waits, then %s", txt(r), release.desc), func(ctx context.Context, e *env) (proto.Message, error) {
		type result struct {
			resp *v3lockpb.LockResponse
			err  error
		}
		got := make(chan result, 1)
		go func() {
			resp, err := v3lockpb.NewLockClient(e.conn).Lock(ctx, r)
			got <- result{resp, err}
		}()
		waiting := fmt.Sprintf("%s/%x", name, lease)
		if err := awaitKey(ctx, e, waiting); err != nil {
			return nil, err
		}
		select {
		case res := <-got:
			return nil, fmt.Errorf("lock granted while held: %v %v", res.resp, res.err)
		default:
		}
		if _, err := release.do(ctx, e); err != nil {
			return nil, fmt.Errorf("%s: %w", release.desc, err)
		}
		res := <-got
		return res.resp, res.err
	}}
}

// awaitKey polls until key exists (10ms apart; the step's deadline bounds it).
func awaitKey(ctx context.Context, e *env, key string) error {
	for {
		resp, err := e.kv.Range(ctx, &pb.RangeRequest{Key: []byte(key)})
		if err != nil {
			return fmt.Errorf("await key %q: %w", key, err)
		}
		if len(resp.Kvs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("await key %q: %w", key, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lockNewLease locks without a lease: the server grants one (60s), whose ID
// differs between servers; it is read from the key (name/<lease hex>) and
// named like a granted one.
func lockNewLease(name string) step {
	r := &v3lockpb.LockRequest{Name: []byte(name)}
	return step{"Lock without a lease " + txt(r), func(ctx context.Context, e *env) (proto.Message, error) {
		resp, err := v3lockpb.NewLockClient(e.conn).Lock(ctx, r)
		if err != nil {
			return nil, err
		}
		hex, ok := bytes.CutPrefix(resp.Key, []byte(name+"/"))
		id, perr := strconv.ParseInt(string(hex), 16, 64)
		if !ok || perr != nil {
			return nil, fmt.Errorf("lock key %q is not %s/<lease in hex>", resp.Key, name)
		}
		e.leases = append(e.leases, id)
		return resp, nil
	}}
}

func electionCall(desc string, f func(ctx context.Context, c epb.ElectionClient) (proto.Message, error)) step {
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		return f(ctx, epb.NewElectionClient(e.conn))
	}}
}

func campaign(name, value string, lease int64, deadline time.Duration) step {
	r := &epb.CampaignRequest{Name: []byte(name), Value: []byte(value), Lease: lease}
	desc := "Campaign " + txt(r)
	if deadline > 0 {
		desc += fmt.Sprintf(" (deadline %v)", deadline)
	}
	return electionCall(desc, func(ctx context.Context, c epb.ElectionClient) (proto.Message, error) {
		if deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, deadline)
			defer cancel()
		}
		return c.Campaign(ctx, r)
	})
}

// leaderKey is the key Campaign returns for a candidate on lease, at rev.
func leaderKey(name string, lease, rev int64) *epb.LeaderKey {
	return &epb.LeaderKey{Name: []byte(name), Key: fmt.Appendf(nil, "%s/%x", name, lease), Rev: rev, Lease: lease}
}

func proclaim(l *epb.LeaderKey, value string) step {
	r := &epb.ProclaimRequest{Leader: l, Value: []byte(value)}
	return electionCall("Proclaim "+txt(r), func(ctx context.Context, c epb.ElectionClient) (proto.Message, error) { return c.Proclaim(ctx, r) })
}

func resign(l *epb.LeaderKey) step {
	r := &epb.ResignRequest{Leader: l}
	return electionCall("Resign "+txt(r), func(ctx context.Context, c epb.ElectionClient) (proto.Message, error) { return c.Resign(ctx, r) })
}

func leader(name string) step {
	r := &epb.LeaderRequest{Name: []byte(name)}
	return electionCall("Leader "+txt(r), func(ctx context.Context, c epb.ElectionClient) (proto.Message, error) { return c.Leader(ctx, r) })
}

// observe opens an Observe stream, runs the writes after its first answer,
// and returns the values it saw as a RangeResponse (one KV per leader
// change), once it has n of them.
func observe(name string, n int, writes ...step) step {
	desc := fmt.Sprintf("Observe %q, expect %d answers, with writes:", name, n)
	for _, w := range writes {
		desc += " [" + w.desc + "]"
	}
	return step{desc, func(ctx context.Context, e *env) (proto.Message, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		stream, err := epb.NewElectionClient(e.conn).Observe(ctx, &epb.LeaderRequest{Name: []byte(name)})
		if err != nil {
			return nil, err
		}
		out := &pb.RangeResponse{}
		for len(out.Kvs) < n {
			resp, err := stream.Recv()
			if err != nil {
				return out, fmt.Errorf("after %d answers: %w", len(out.Kvs), err)
			}
			out.Header = resp.Header
			out.Kvs = append(out.Kvs, resp.Kv)
			if len(out.Kvs) == 1 {
				for _, w := range writes {
					if _, err := w.do(ctx, e); err != nil {
						return nil, fmt.Errorf("%s: %w", w.desc, err)
					}
				}
			}
		}
		out.Count = int64(len(out.Kvs))
		return out, nil
	}}
}

// awaitGone waits until key is gone (a caller that gave up while waiting
// has its key deleted by the server, after the caller saw its deadline) and
// returns the keys under prefix.
func awaitGone(prefix, key string) step {
	return step{fmt.Sprintf("await %q gone, then Range prefix %q", key, prefix), func(ctx context.Context, e *env) (proto.Message, error) {
		for {
			resp, err := e.kv.Range(ctx, &pb.RangeRequest{Key: []byte(key)})
			if err != nil {
				return nil, err
			}
			if len(resp.Kvs) == 0 {
				return rangePrefix(prefix).do(ctx, e)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%q still there: %w", key, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}}
}

func rangePrefix(prefix string) step {
	end := []byte(prefix)
	end[len(end)-1]++
	return get(&pb.RangeRequest{Key: []byte(prefix), RangeEnd: end})
}

func concurrencySteps() []step {
	// Revisions below follow from the steps: three grants write nothing;
	// the first key written is revision 2.
	return []step{
		grant(60, leaseA), grant(60, leaseB), grant(60, leaseC),

		// Lock: uncontended, re-entrant on the same lease, blocking,
		// handed over on Unlock and on the holder's lease going away.
		lock("/locks/a", leaseA),
		lock("/locks/a", leaseA),
		lockBlocks("/locks/a", leaseB),
		awaitGone("/locks/a/", fmt.Sprintf("/locks/a/%x", leaseB)),
		lockHandover("/locks/a", leaseB, unlock(fmt.Sprintf("/locks/a/%x", leaseA))),
		lockHandover("/locks/a", leaseC, revoke(leaseB)),
		unlock(fmt.Sprintf("/locks/a/%x", leaseC)),
		unlock("/locks/nothing/here"),
		lock("/locks/a", 0x7777), // no such lease
		lockNewLease("/locks/b"),
		rangePrefix("/locks/"),

		// Election.
		leader("/e/x"),
		campaign("/e/x", "v1", leaseA, 0),
		leader("/e/x"),
		campaign("/e/x", "w", leaseC, 300*time.Millisecond),
		awaitGone("/e/x/", fmt.Sprintf("/e/x/%x", leaseC)),
		proclaim(leaderKey("/e/x", leaseA, 11), "v2"),
		leader("/e/x"),
		proclaim(nil, "v3"),
		proclaim(leaderKey("/e/x", leaseC, 11), "v3"),
		resign(nil),
		observe("/e/x", 3,
			resign(leaderKey("/e/x", leaseA, 11)),
			campaign("/e/x", "c1", leaseC, 0),
			proclaim(leaderKey("/e/x", leaseC, 16), "c2"),
		),
		resign(leaderKey("/e/x", leaseC, 16)),
		leader("/e/x"),
		rangePrefix("/e/"),
	}
}

func TestLockAndElectionAgainstEtcd(t *testing.T) {
	t.Parallel()
	oracle, tend := newEnv(startEtcd(t)), newEnv(startTend(t))
	differ(t, oracle, tend, concurrencySteps())
}

// TestLockAndElectionOnThreeMembers runs the steps against a three-member
// tend cluster, through a follower: the inner calls forward like any other.
func TestLockAndElectionOnThreeMembers(t *testing.T) {
	t.Parallel()
	oracle, tend := newEnv(startEtcd(t)), newEnv(startTendCluster(t, 3))
	differ(t, oracle, tend, concurrencySteps())
}

// TestLockAndElectionAuth: the inner calls are authorised as the caller of
// the outer one, so a user locks and campaigns only where it may write.
func TestLockAndElectionAuth(t *testing.T) {
	t.Parallel()
	oracle, tend := newEnv(startEtcd(t)), newEnv(startTend(t))
	differ(t, oracle, tend, lockAuthSteps(t))
}

func lockAuthSteps(t *testing.T) []step {
	root := newUser(t, "root", "rootpw")
	alice := newUser(t, "alice", "alicepw") // reads and writes /app1/
	return []step{
		userAdd("root", "rootpw", false),
		userGrant("root", "root"),
		userAdd("alice", "alicepw", false),
		roleAdd("app1"),
		roleGrant("app1", authpb.READWRITE, "/app1/", "/app10"),
		userGrant("alice", "app1"),
		grant(60, leaseA),
		authEnable(),

		alice.as(lock("/app1/lock", leaseA)),
		alice.as(lock("/app2/lock", leaseA)),
		alice.as(lockNewLease("/app1/other")),
		alice.as(unlock("/app2/lock/1a")),
		alice.as(campaign("/app1/e", "v", leaseA, 0)),
		alice.as(campaign("/app2/e", "v", leaseA, 0)),
		alice.as(leader("/app2/e")),
		alice.as(leader("/app1/e")),
		lock("/app1/lock", leaseA), // no credentials
		root.as(lock("/app2/lock", leaseA)),
		root.as(rangePrefix("/app")),
	}
}

// TestLockCancelledWaiterLeavesNoKey checks, on tend alone, what a cancelled
// waiter leaves behind: nothing (its key is deleted) and the holder keeps
// the lock.
func TestLockCancelledWaiterLeavesNoKey(t *testing.T) {
	t.Parallel()
	e := newEnv(startTend(t))
	for _, s := range []step{grant(60, leaseA), grant(60, leaseB), lock("/l", leaseA)} {
		if o := run(e, s); o.err != "" {
			t.Fatalf("%s: %s", s.desc, o.err)
		}
	}
	o := run(e, lockBlocks("/l", leaseB))
	if o.err == "" || !regexp.MustCompile(`DeadlineExceeded`).MatchString(o.err) {
		t.Fatalf("lock of a held mutex: %s, want a deadline error", o)
	}
	o = run(e, awaitGone("/l/", fmt.Sprintf("/l/%x", leaseB)))
	resp, ok := o.resp.(*pb.RangeResponse)
	if !ok {
		t.Fatalf("after a cancelled waiter: %s", o)
	}
	// Normalised: leaseA is the first lease granted.
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "/l/<lease -1>" {
		t.Errorf("keys under /l/ after a cancelled waiter: %v, want only the holder's", resp.Kvs)
	}
}

// TestLockAndElectionJSONGatewayAgainstEtcd: the services answer on etcd's
// gateway paths too (/v3/lock/..., /v3/election/...).
func TestLockAndElectionJSONGatewayAgainstEtcd(t *testing.T) {
	t.Parallel()
	backends := []backend{startEtcd(t), startTend(t)}
	key := fmt.Sprintf("/gw/l/%x", leaseA)
	steps := []struct{ path, body string }{
		{"/v3/lease/grant", fmt.Sprintf(`{"TTL":60,"ID":%d}`, leaseA)},
		{"/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":%d}`, b64("/gw/l"), leaseA)},
		{"/v3/lock/unlock", fmt.Sprintf(`{"key":%q}`, b64(key))},
		{"/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("/gw/e"))},
		{"/v3/election/campaign", fmt.Sprintf(`{"name":%q,"value":%q,"lease":%d}`, b64("/gw/e"), b64("v1"), leaseA)},
		{"/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("/gw/e"))},
		{"/v3/election/proclaim", fmt.Sprintf(`{"value":%q}`, b64("v2"))},
		{"/v3/election/resign", fmt.Sprintf(`{"leader":{"name":%q,"key":%q,"rev":4,"lease":%d}}`, b64("/gw/e"), b64(fmt.Sprintf("/gw/e/%x", leaseA)), leaseA)},
		{"/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("/gw/e"))},
	}
	for i, s := range steps {
		var outs []string
		for _, b := range backends {
			outs = append(outs, gwCall(t, b, s.path, s.body, ""))
		}
		if outs[0] != outs[1] {
			t.Errorf("step %d: POST %s %s\n  etcd: %s\n  tend: %s", i, s.path, s.body, outs[0], outs[1])
		}
		if i == 1 && !strings.Contains(outs[1], b64(key)) {
			t.Errorf("lock through the gateway: %s, want key %s", outs[1], key)
		}
	}
}
