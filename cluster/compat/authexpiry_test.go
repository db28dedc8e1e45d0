package compat

import (
	"context"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/cluster"
)

// TestAuthTokenExpiry starts both servers with one-second tokens (etcd's
// --auth-token-ttl=1 for simple tokens, ttl=1s in a JWT spec). A clientv3
// client logs in as alice and reads; then a token alice gets after that
// read is awaited until the server refuses it, which means alice's client's
// older token has expired too; the client's next read succeeds all the same,
// because clientv3 meets "invalid auth token", authenticates again and
// retries.
func TestAuthTokenExpiry(t *testing.T) {
	t.Parallel()
	priv, pub := jwtKeys(t)
	for _, tc := range []struct {
		name, spec string
		// poll is how long to wait between tries of the kept token.
		// Each accepted try keeps a simple token alive for another TTL,
		// and etcd drops expired simple tokens once a second, so tries
		// must be more than two seconds apart. A JWT expires when its
		// time is up, whoever uses it.
		poll time.Duration
	}{
		{"simple", "simple", 2500 * time.Millisecond},
		{"jwt", "jwt,sign-method=RS256,priv-key=" + priv + ",pub-key=" + pub + ",ttl=1s", 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			oracle := newEnv(startEtcdWith(t, func(cfg *embed.Config) {
				cfg.AuthToken = tc.spec
				cfg.AuthTokenTTL = 1
			}))
			tend := newEnv(startTendWith(t, func(cfg *cluster.Config) {
				cfg.AuthToken = tc.spec
				cfg.AuthTokenTTL = time.Second
			}))
			alice := newUser(t, "alice", "alicepw")
			differ(t, oracle, tend, []step{
				userAdd("root", "rootpw", false), userGrant("root", "root"),
				roleAdd("app1"), roleGrant("app1", read, "/app1/", "/app10"),
				userAdd("alice", "alicepw", false), userGrant("alice", "app1"),
				put("/app1/x", "1"),
				authEnable(),
				alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
				awaitTokenExpiry(t, "alice", "alicepw", tc.poll),
				alice.as(get(&pb.RangeRequest{Key: b("/app1/x")})),
				alice.as(watch("/app1/", "/app10", 1, false, 1)),
			})
		})
	}
}

// awaitTokenExpiry authenticates as name, then tries the token every poll
// until the server refuses it, and returns that refusal. A token still
// accepted after 30 seconds fails the test: tokens do not expire.
func awaitTokenExpiry(t *testing.T, name, password string, poll time.Duration) step {
	return step{"Authenticate " + name + ", then read with the token until it is refused", func(ctx context.Context, e *env) (proto.Message, error) {
		resp, err := pb.NewAuthClient(e.cli.ActiveConnection()).Authenticate(ctx, &pb.AuthenticateRequest{Name: name, Password: password})
		if err != nil {
			return nil, err
		}
		// The step's own deadline is too short for simple tokens' polls.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		tctx := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token)
		tick := time.NewTicker(poll)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-ctx.Done():
				t.Errorf("%s: a token of %s is still accepted after 30s", e.name, name)
				return nil, ctx.Err()
			}
			if _, err := e.kv.Range(tctx, &pb.RangeRequest{Key: b("/app1/x")}); err != nil {
				return nil, err
			}
		}
	}}
}
