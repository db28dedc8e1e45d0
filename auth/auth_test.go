package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"golang.org/x/crypto/bcrypt"
)

// clock is a test clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                                 { return c.t }
func (c *clock) add(d time.Duration)                            { c.t = c.t.Add(d) }
func newClock() *clock                                          { return &clock{t: time.Unix(1_700_000_000, 0)} }
func check(t *testing.T, tk Tokens, tok string) (Claims, error) { t.Helper(); return tk.Check(tok) }

func TestSimpleTokens(t *testing.T) {
	c := newClock()
	tk, err := NewTokens("simple", Options{TTL: time.Minute, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := tk.Prefix()
	if err != nil || len(prefix) != 16 || strings.Trim(prefix, letters) != "" {
		t.Fatalf("prefix %q: %v", prefix, err)
	}
	tok, err := tk.Assign("alice", 3, 42, prefix)
	if err != nil || tok != prefix+".42" || tk.Index(tok) != 42 {
		t.Fatalf("assign: %q %v (index %d)", tok, err, tk.Index(tok))
	}
	if cl, err := check(t, tk, tok); err != nil || cl != (Claims{User: "alice"}) {
		t.Fatalf("check: %+v %v", cl, err)
	}
	// Each use restarts the TTL; an unused token expires.
	c.add(50 * time.Second)
	if _, err := check(t, tk, tok); err != nil {
		t.Fatalf("check after 50s: %v", err)
	}
	c.add(50 * time.Second)
	if _, err := check(t, tk, tok); err != nil {
		t.Fatalf("check 50s after the last use: %v", err)
	}
	c.add(time.Minute)
	if _, err := check(t, tk, tok); !errors.Is(err, ErrInvalidAuthToken) {
		t.Fatalf("check after the TTL: %v", err)
	}
	for _, bad := range []string{"", "x", prefix, prefix + ".", prefix + ".x", ".42", prefix + ".4.2", "other.42"} {
		if _, err := check(t, tk, bad); !errors.Is(err, ErrInvalidAuthToken) {
			t.Errorf("check %q: %v", bad, err)
		}
	}
	a, _ := tk.Assign("alice", 3, 50, "A")
	b, _ := tk.Assign("bob", 3, 51, "B")
	tk.Forget("alice")
	if _, err := check(t, tk, a); err == nil {
		t.Error("alice's token outlived Forget")
	}
	if _, err := check(t, tk, b); err != nil {
		t.Errorf("bob's token after Forget(alice): %v", err)
	}
	tk.ForgetAll()
	if _, err := check(t, tk, b); err == nil {
		t.Error("bob's token outlived ForgetAll")
	}
}

// writePEM writes a PEM block into dir/name and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func keyFiles(t *testing.T, dir, name string, priv any, pub any) (string, string) {
	t.Helper()
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".key", "PRIVATE KEY", pk), writePEM(t, dir, name+".pub", "PUBLIC KEY", pubDER)
}

func TestJWTTokens(t *testing.T) {
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaPriv, rsaPub := keyFiles(t, dir, "rsa", rk, &rk.PublicKey)
	ecPriv, ecPub := keyFiles(t, dir, "ec", ek, &ek.PublicKey)
	edPrivF, edPubF := keyFiles(t, dir, "ed", edPriv, edPub)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("a shared secret of some length"), 0o600)

	for _, spec := range []string{
		"jwt,sign-method=RS256,priv-key=" + rsaPriv + ",pub-key=" + rsaPub,
		"jwt,sign-method=PS384,priv-key=" + rsaPriv,
		"jwt,sign-method=ES256,priv-key=" + ecPriv + ",pub-key=" + ecPub,
		"jwt,sign-method=EdDSA,priv-key=" + edPrivF + ",pub-key=" + edPubF,
		"jwt,sign-method=HS256,priv-key=" + secret,
	} {
		c := newClock()
		tk, err := NewTokens(spec+",ttl=10m", Options{Now: c.now})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if p, _ := tk.Prefix(); p != "" {
			t.Errorf("%s: prefix %q", spec, p)
		}
		tok, err := tk.Assign("alice", 7, 99, "")
		if err != nil {
			t.Fatalf("%s: assign: %v", spec, err)
		}
		if cl, err := check(t, tk, tok); err != nil || cl != (Claims{User: "alice", Revision: 7}) {
			t.Errorf("%s: check: %+v %v", spec, cl, err)
		}
		if tk.Index(tok) != 0 {
			t.Errorf("%s: a JWT has no log index", spec)
		}
		// Tampering breaks the signature.
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "alice", "mallo", 1)))
		if _, err := check(t, tk, strings.Join(parts, ".")); !errors.Is(err, ErrInvalidAuthToken) {
			t.Errorf("%s: tampered token: %v", spec, err)
		}
		// Forget does not revoke a JWT (the auth revision does); expiry does.
		tk.ForgetAll()
		c.add(9 * time.Minute)
		if _, err := check(t, tk, tok); err != nil {
			t.Errorf("%s: check after 9m: %v", spec, err)
		}
		c.add(2 * time.Minute)
		if _, err := check(t, tk, tok); !errors.Is(err, ErrInvalidAuthToken) {
			t.Errorf("%s: check after expiry: %v", spec, err)
		}
	}

	// A member with the public key alone verifies tokens signed elsewhere,
	// and cannot sign.
	signer, _ := NewTokens("jwt,sign-method=RS256,priv-key="+rsaPriv, Options{})
	verifier, err := NewTokens("jwt,sign-method=RS256,pub-key="+rsaPub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := signer.Assign("bob", 3, 0, "")
	if cl, err := check(t, verifier, tok); err != nil || cl.User != "bob" {
		t.Errorf("verify-only check: %+v %v", cl, err)
	}
	if _, err := verifier.Assign("bob", 3, 0, ""); err == nil || !strings.Contains(err.Error(), "verify-only") {
		t.Errorf("verify-only assign: %v", err)
	}
	// A token signed with another method or key is refused.
	other, _ := NewTokens("jwt,sign-method=ES256,priv-key="+ecPriv, Options{})
	etok, _ := other.Assign("bob", 3, 0, "")
	if _, err := check(t, verifier, etok); !errors.Is(err, ErrInvalidAuthToken) {
		t.Errorf("ES256 token checked by an RS256 verifier: %v", err)
	}
}

func TestTokenSpecErrors(t *testing.T) {
	dir := t.TempDir()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rk2, _ := rsa.GenerateKey(rand.Reader, 2048)
	priv, _ := keyFiles(t, dir, "a", rk, &rk.PublicKey)
	_, pub2 := keyFiles(t, dir, "b", rk2, &rk2.PublicKey)
	for spec, want := range map[string]string{
		"":                                      `unknown token type ""`,
		"magic":                                 `unknown token type "magic"`,
		"simple,ttl=5m":                         "simple tokens take no options",
		"jwt":                                   `sign-method=""`,
		"jwt,sign-method=none,priv-key=" + priv: `sign-method="none"`,
		"jwt,sign-method=RS256":                 "give priv-key=FILE",
		"jwt,sign-method=RS256,priv-key=/nonexistent/key":             "priv-key: open /nonexistent/key",
		"jwt,sign-method=RS256,priv-key=" + priv + ",pub-key=" + pub2: "pub-key does not match priv-key",
		"jwt,sign-method=ES256,priv-key=" + priv:                      "read ES256 key",
		"jwt,sign-method=RS256,priv-key=" + priv + ",ttl=soon":        "ttl=soon",
		"jwt,sign-method=RS256,priv-key=" + priv + ",color=red":       `unknown jwt option "color"`,
		"jwt,sign-method=RS256,sign-method=HS256":                     "given twice",
		"jwt,priv-key": "not key=value",
	} {
		_, err := NewTokens(spec, Options{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--auth-token") {
			t.Errorf("NewTokens(%q) = %v, want an error naming --auth-token and containing %q", spec, err, want)
		}
	}
}

func TestDefaultPasswordsDummy(t *testing.T) {
	cost, err := bcrypt.Cost(DefaultPasswords().dummy)
	if err != nil || cost != DefaultBcryptCost {
		t.Errorf("default dummy hash: cost %d, %v; want cost %d", cost, err, DefaultBcryptCost)
	}
}

func TestPasswords(t *testing.T) {
	if _, err := NewPasswords(3); err == nil || !strings.Contains(err.Error(), "--bcrypt-cost 3") {
		t.Errorf("cost 3: %v", err)
	}
	p, err := NewPasswords(8)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	u := &authpb.User{Name: []byte("alice"), Password: raw}
	if !p.Check(u, "s3cret") {
		t.Error("the right password does not match")
	}
	if p.Check(u, "S3cret") {
		t.Error("a wrong password matches")
	}
	if p.Check(nil, "tend: no such user") {
		t.Error("an unknown user matches the dummy hash's password")
	}
	cn := &authpb.User{Name: []byte("cn"), Options: &authpb.UserAddOptions{NoPassword: true}}
	if p.Check(cn, "") {
		t.Error("a user without a password matches")
	}
}

// TestPasswordCheckTimeHidesUsers: checking an unknown user's password takes
// a bcrypt comparison, like a known user with a wrong password, so the time
// does not tell which users exist. (A shortcut would be thousands of times
// faster; the bound leaves room for a busy machine.)
func TestPasswordCheckTimeHidesUsers(t *testing.T) {
	p, err := NewPasswords(8)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.Hash("s3cret")
	raw, _ := base64.StdEncoding.DecodeString(h)
	known := &authpb.User{Name: []byte("alice"), Password: raw}
	cn := &authpb.User{Name: []byte("cn"), Options: &authpb.UserAddOptions{NoPassword: true}}
	median := func(u *authpb.User) time.Duration {
		var ds []time.Duration
		for range 9 {
			start := time.Now()
			p.Check(u, "wrong")
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	k, unknown, nopw := median(known), median(nil), median(cn)
	for name, d := range map[string]time.Duration{"unknown user": unknown, "user without password": nopw} {
		if d < k/4 {
			t.Errorf("%s: check took %v, a known user's %v: the difference tells users apart", name, d, k)
		}
	}
}
