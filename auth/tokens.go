package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidAuthToken answers a request whose token is unknown, expired,
// forgotten or badly signed (etcd's text; clientv3 authenticates again).
var ErrInvalidAuthToken = errors.New("auth: invalid auth token")

// DefaultTokenTTL is how long a token lasts: a simple token since its last
// use (etcd's --auth-token-ttl default, 300s), a JWT since it was issued
// (etcd's default JWT ttl, 5m).
const DefaultTokenTTL = 300 * time.Second

// Claims are what a token says about its holder.
type Claims struct {
	User string
	// Revision is the auth revision the token was issued at. It is 0 for
	// simple tokens: they hold at every revision until forgotten.
	Revision uint64
}

// Tokens issue and check tokens. The store calls Assign, Forget and ForgetAll
// while applying (Tokens implements store.TokenIssuer); the API layer calls
// Prefix before proposing an Authenticate, and Check on every request.
type Tokens interface {
	// Prefix returns the random part of a simple token ("" for JWT).
	Prefix() (string, error)
	// Assign makes the token of user, authenticated at log index while the
	// auth state was at revision rev.
	Assign(user string, rev, index uint64, prefix string) (string, error)
	// Check returns the claims of a valid token, or ErrInvalidAuthToken.
	Check(token string) (Claims, error)
	// Index is the log index a simple token was assigned at (0 for JWT): a
	// member that has not applied that far yet does not know the token.
	Index(token string) uint64
	Forget(user string)
	ForgetAll()
}

// Options tune NewTokens.
type Options struct {
	// TTL is --auth-token-ttl for simple tokens (0: DefaultTokenTTL). A
	// JWT's lifetime is its own ttl option.
	TTL time.Duration
	// Now is the clock for token lifetimes (nil: time.Now).
	Now func() time.Time
}

// NewTokens builds the tokens that spec (etcd's --auth-token) describes:
// "simple", or "jwt,sign-method=ALG,priv-key=FILE,pub-key=FILE,ttl=DUR".
func NewTokens(spec string, opts Options) (Tokens, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	kind, params, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "simple":
		if len(params) > 0 {
			return nil, fmt.Errorf("--auth-token %q: simple tokens take no options", spec)
		}
		return newSimple(opts), nil
	case "jwt":
		t, err := newJWT(params, opts.Now)
		if err != nil {
			return nil, fmt.Errorf("--auth-token %q: %w", spec, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("--auth-token %q: unknown token type %q (use simple or jwt,sign-method=...,priv-key=...)", spec, kind)
}

// parseSpec splits "type,k=v,k=v", refusing malformed or repeated options.
func parseSpec(spec string) (string, map[string]string, error) {
	parts := strings.Split(spec, ",")
	params := map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.Contains(v, "=") {
			return "", nil, fmt.Errorf("--auth-token %q: option %q is not key=value", spec, p)
		}
		if _, dup := params[k]; dup {
			return "", nil, fmt.Errorf("--auth-token %q: option %q given twice", spec, k)
		}
		params[k] = v
	}
	return parts[0], params, nil
}

// simpleTokenLen and letters are etcd's: 16 random ASCII letters.
const (
	simpleTokenLen = 16
	letters        = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// randomLetters returns n letters from crypto/rand.
func randomLetters(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		x, err := rand.Int(rand.Reader, big.NewInt(int64(len(letters))))
		if err != nil {
			return "", fmt.Errorf("random token prefix: %w", err)
		}
		b[i] = letters[x.Int64()]
	}
	return string(b), nil
}

// simpleIndex parses the log index out of "prefix.index".
func simpleIndex(token string) (uint64, bool) {
	prefix, idx, ok := strings.Cut(token, ".")
	if !ok || prefix == "" || strings.Contains(idx, ".") {
		return 0, false
	}
	n, err := strconv.ParseUint(idx, 10, 64)
	return n, err == nil
}
