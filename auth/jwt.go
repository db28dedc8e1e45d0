package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtTokens are etcd's JWT tokens: claims username, revision and exp,
// signed with the configured method and key.
type jwtTokens struct {
	method jwt.SigningMethod
	// sign is nil for a verify-only setup (a public key alone).
	sign   any
	verify any
	ttl    time.Duration
	now    func() time.Time
}

var jwtOptions = []string{"sign-method", "priv-key", "pub-key", "ttl"}

func newJWT(params map[string]string, now func() time.Time) (*jwtTokens, error) {
	for k := range params {
		if !slices.Contains(jwtOptions, k) {
			return nil, fmt.Errorf("unknown jwt option %q (use %s)", k, strings.Join(jwtOptions, ", "))
		}
	}
	t := &jwtTokens{ttl: 5 * time.Minute, now: now}
	if s := params["ttl"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("ttl=%s is not a positive duration (e.g. ttl=5m)", s)
		}
		t.ttl = d
	}
	name := params["sign-method"]
	t.method = jwt.GetSigningMethod(name)
	if t.method == nil || name == "none" {
		return nil, fmt.Errorf("sign-method=%q is not a signing method (use e.g. RS256, ES256, EdDSA or HS256)", name)
	}
	priv, pub, err := readKeys(params["priv-key"], params["pub-key"])
	if err != nil {
		return nil, err
	}
	if err := t.setKeys(priv, pub); err != nil {
		return nil, err
	}
	return t, nil
}

func readKeys(privFile, pubFile string) (priv, pub []byte, err error) {
	if privFile != "" {
		if priv, err = os.ReadFile(privFile); err != nil {
			return nil, nil, fmt.Errorf("priv-key: %w", err)
		}
	}
	if pubFile != "" {
		if pub, err = os.ReadFile(pubFile); err != nil {
			return nil, nil, fmt.Errorf("pub-key: %w", err)
		}
	}
	if priv == nil && pub == nil {
		return nil, nil, errors.New("give priv-key=FILE (and pub-key=FILE to check it), or pub-key=FILE alone to only verify")
	}
	return priv, pub, nil
}

// setKeys parses the PEM keys for the method and checks that a given pair
// matches.
func (t *jwtTokens) setKeys(priv, pub []byte) error {
	type keyPair interface{ Public() crypto.PublicKey }
	var (
		sk  keyPair
		pk  crypto.PublicKey
		err error
	)
	switch t.method.(type) {
	case *jwt.SigningMethodHMAC:
		if priv == nil {
			return errors.New("HMAC signing needs priv-key=FILE holding the shared secret")
		}
		t.sign, t.verify = priv, priv
		return nil
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if priv != nil {
			var k *rsa.PrivateKey
			k, err = jwt.ParseRSAPrivateKeyFromPEM(priv)
			sk = k
		}
		if err == nil && pub != nil {
			pk, err = jwt.ParseRSAPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodECDSA:
		if priv != nil {
			var k *ecdsa.PrivateKey
			k, err = jwt.ParseECPrivateKeyFromPEM(priv)
			sk = k
		}
		if err == nil && pub != nil {
			pk, err = jwt.ParseECPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodEd25519:
		if priv != nil {
			var k crypto.PrivateKey
			if k, err = jwt.ParseEdPrivateKeyFromPEM(priv); err == nil {
				sk = k.(ed25519.PrivateKey)
			}
		}
		if err == nil && pub != nil {
			pk, err = jwt.ParseEdPublicKeyFromPEM(pub)
		}
	default:
		return fmt.Errorf("sign-method=%s is not supported", t.method.Alg())
	}
	if err != nil {
		return fmt.Errorf("read %s key: %w", t.method.Alg(), err)
	}
	if sk != nil {
		if pk != nil && !sk.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pk) {
			return errors.New("pub-key does not match priv-key")
		}
		t.sign, t.verify = sk, sk.Public()
		return nil
	}
	t.verify = pk
	return nil
}

func (t *jwtTokens) Prefix() (string, error) { return "", nil }

func (t *jwtTokens) Assign(user string, rev, _ uint64, _ string) (string, error) {
	if t.sign == nil {
		return "", errors.New("jwt tokens are verify-only here (pub-key without priv-key): this member cannot sign")
	}
	tok := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user,
		"revision": rev,
		"exp":      t.now().Add(t.ttl).Unix(),
	})
	s, err := tok.SignedString(t.sign)
	if err != nil {
		return "", fmt.Errorf("sign token for %s: %w", user, err)
	}
	return s, nil
}

func (t *jwtTokens) Check(token string) (Claims, error) {
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return t.verify, nil },
		jwt.WithValidMethods([]string{t.method.Alg()}),
		jwt.WithTimeFunc(t.now),
		jwt.WithExpirationRequired())
	if err != nil || !parsed.Valid {
		return Claims{}, ErrInvalidAuthToken
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return Claims{}, ErrInvalidAuthToken
	}
	user, ok := claims["username"].(string)
	if !ok {
		return Claims{}, ErrInvalidAuthToken
	}
	rev, ok := claims["revision"].(float64)
	if !ok || rev < 1 {
		return Claims{}, ErrInvalidAuthToken
	}
	return Claims{User: user, Revision: uint64(rev)}, nil
}

func (t *jwtTokens) Index(string) uint64 { return 0 }
func (t *jwtTokens) Forget(string)       {}
func (t *jwtTokens) ForgetAll()          {}
