package v3rpc

import (
	"context"
	"log/slog"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/tendkv/tend/auth"
	"github.com/tendkv/tend/store"
)

// authn tells who calls: from the token in the call's metadata, or from the
// common name of a verified client certificate. The store decides what they
// may do.
type authn struct {
	b      Backend
	tokens auth.Tokens
	lg     *slog.Logger
}

// info returns the caller: nil when auth is off or the call carries no
// credentials; auth.ErrInvalidAuthToken for a token this member does not
// accept. A simple token carries the log index it was assigned at: if this
// member has not applied that far, it catches up once before deciding.
func (a *authn) info(ctx context.Context) (*store.AuthInfo, error) {
	v := a.b.Store().Auth()
	if !v.Enabled() {
		return nil, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ts := md.Get(rpctypes.TokenFieldNameGRPC)
	if len(ts) == 0 {
		ts = md.Get(rpctypes.TokenFieldNameSwagger)
	}
	if len(ts) == 0 {
		return a.tlsInfo(ctx, md, v), nil
	}
	tok := strings.TrimPrefix(ts[0], "Bearer ")
	c, err := a.tokens.Check(tok)
	if err != nil && a.tokens.Index(tok) > a.b.AppliedIndex() {
		if rerr := a.b.LinearizableRead(ctx); rerr != nil {
			return nil, rerr
		}
		c, err = a.tokens.Check(tok)
	}
	if err != nil {
		a.lg.Debug("invalid auth token", "err", err)
		return nil, auth.ErrInvalidAuthToken
	}
	if c.Revision == 0 {
		// Simple tokens hold at the current revision until forgotten.
		c.Revision = v.Revision()
	}
	return &store.AuthInfo{Username: c.User, Revision: c.Revision}, nil
}

// tlsInfo names the caller by its verified client certificate's common
// name, as etcd does with --client-cert-auth. Certificates only verify when
// the server asks for them, so none are found otherwise. Calls relayed by
// the JSON gateway carry the gateway's certificate, not the caller's: they
// are not named by it.
func (a *authn) tlsInfo(ctx context.Context, md metadata.MD, v store.AuthView) *store.AuthInfo {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	for _, chain := range ti.State.VerifiedChains {
		if len(chain) == 0 {
			continue
		}
		if len(md.Get("grpcgateway-accept")) > 0 {
			return nil
		}
		return &store.AuthInfo{Username: chain[0].Subject.CommonName, Revision: v.Revision()}
	}
	return nil
}

// authKey carries the caller the interceptor found to the handlers.
type authKey struct{}

func withCaller(ctx context.Context, ai *store.AuthInfo) context.Context {
	return context.WithValue(ctx, authKey{}, ai)
}

// caller is the caller the interceptor found: nil when auth was off or the
// call had no credentials.
func caller(ctx context.Context) *store.AuthInfo {
	ai, _ := ctx.Value(authKey{}).(*store.AuthInfo)
	return ai
}

// orEmpty stands for "no credentials" in a permission check, which then
// answers "user name is empty" when auth is on.
func orEmpty(ai *store.AuthInfo) store.AuthInfo {
	if ai == nil {
		return store.AuthInfo{}
	}
	return *ai
}

// requireUser refuses a call without credentials while auth is on (etcd's
// requireAuthInfo).
func requireUser(v store.AuthView, ai *store.AuthInfo) error {
	if v.Enabled() && ai == nil {
		return store.ErrUserEmpty
	}
	return nil
}

// requireAdmin refuses a call unless auth is off or the caller holds the
// root role (etcd's isPermitted).
func requireAdmin(v store.AuthView, ai *store.AuthInfo) error {
	return v.CheckAdmin(orEmpty(ai))
}

// checkLeaseKeys lets root through, and others when write (or read) covers
// every key of each lease; an unknown lease passes. Etcd's checks for
// keep-alive, time-to-live with keys, and lease listing.
func checkLeaseKeys(st *store.Store, v store.AuthView, ai *store.AuthInfo, write bool, ids ...int64) error {
	if err := requireUser(v, ai); err != nil || !v.Enabled() {
		return err
	}
	if v.CheckAdmin(*ai) == nil {
		return nil
	}
	for _, id := range ids {
		l, ok := st.Lease(id)
		if !ok {
			continue
		}
		for _, k := range l.Keys {
			var err error
			if write {
				err = v.CheckPut(*ai, k)
			} else {
				err = v.CheckRange(*ai, k, nil)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// checkStale answers a read that was authorised at one auth revision and
// served after a change: the client authenticates again and retries.
func checkStale(st *store.Store, ai *store.AuthInfo) error {
	if ai != nil && ai.Revision != 0 && st.Auth().Enabled() && ai.Revision != st.Auth().Revision() {
		return store.ErrAuthOldRevision
	}
	return nil
}
