package compat

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// ctlAuthSteps set up users and roles with the real etcdctl, enable auth,
// and check what each user may do, ending with etcd's denials.
var ctlAuthSteps = []ctlStep{
	{args: "auth status"},
	{args: "auth enable"},
	{args: "user add root --new-user-password rootpw"},
	{args: "user add root:again"},
	{args: "user add alice:alicepw"},
	{args: "user add bob --interactive=false", stdin: "bobpw\n"},
	{args: "user add cn-client --no-password"},
	{args: "user list"},
	{args: "role add app1"},
	{args: "role add app2"},
	{args: "role add app1"},
	{args: "role grant-permission app1 read /app1/ --prefix"},
	{args: "role grant-permission app1 write /app1/w"},
	{args: "role grant-permission app1 readwrite /app1/rw /app1/rx"},
	{args: "role grant-permission app1 read /z --from-key"},
	{args: "role grant-permission app1 bogus /x"},
	{args: "role grant-permission nope read /x"},
	{args: "role grant-permission app2 readwrite /app2/ --prefix"},
	{args: "role get app1"},
	{args: "role get nope"},
	{args: "role list"},
	{args: "user grant-role alice app1"},
	{args: "user grant-role bob app2"},
	{args: "user grant-role bob nope"},
	{args: "user get alice"},
	{args: "user get alice --detail"},
	{args: "user get -w json alice"},
	{args: "put /app1/x v1"},
	{args: "put /app2/x v2"},
	{args: "auth enable"},
	{args: "auth status"},
	{args: "role get root --user root:rootpw"},
	{args: "user get root --user root:rootpw"},

	// Without a user, nothing; alice reads /app1/ and writes /app1/w only.
	{args: "get /app1/x"},
	{args: "put /app1/x anon"},
	{args: "get /app1/x --user alice:alicepw"},
	{args: "get --prefix /app1/ --user alice:alicepw"},
	{args: "get /app2/x --user alice:alicepw"},
	{args: "get --from-key /app1/ --user alice:alicepw"},
	{args: "get --prefix / --user alice:alicepw"},
	{args: "put /app1/x nope --user alice:alicepw"},
	{args: "put /app1/w yes --user alice:alicepw"},
	{args: "put /app1/rw yes --user alice:alicepw"},
	{args: "del /app1/x --user alice:alicepw"},
	{args: "txn --user alice:alicepw", stdin: "value(\"/app1/x\") = \"v1\"\n\nget /app1/x\n\nget /app2/x\n\n"},
	{args: "watch --prefix /app2/ --user alice:alicepw", lines: 1},
	{args: "watch --rev 1 --prefix /app1/ --user alice:alicepw", lines: 4},
	{args: "lease grant 100 --user bob:bobpw"},
	{args: "put /app2/leased v --lease {L1} --user bob:bobpw"},
	{args: "lease revoke {L1} --user alice:alicepw"},
	{args: "lease timetolive {L1} --keys --user alice:alicepw"},
	{args: "lease keep-alive --once {L1} --user alice:alicepw"},
	{args: "lease list --user alice:alicepw"},
	{args: "lease timetolive {L1} --keys --user bob:bobpw"},
	{args: "user list --user alice:alicepw"},
	{args: "user get bob --user alice:alicepw"},
	{args: "role get app1 --user alice:alicepw"},
	{args: "compaction 2 --user alice:alicepw"},
	{args: "get /app1/x --user alice:wrong"},
	{args: "get /app1/x --user nobody:x"},

	// root may do anything but stop being root.
	{args: "user list --user root:rootpw"},
	{args: "role list --user root:rootpw"},
	{args: "get --prefix / --keys-only --user root:rootpw"},
	{args: "role revoke-permission app1 /app1/ --prefix --user root:rootpw"},
	{args: "role revoke-permission app1 /z --from-key --user root:rootpw"},
	{args: "role revoke-permission app1 /app1/rw /app1/rx --user root:rootpw"},
	{args: "role revoke-permission app1 /nope --user root:rootpw"},
	{args: "role get app1 --user root:rootpw"},
	{args: "get /app1/x --user alice:alicepw"},
	{args: "user revoke-role alice app1 --user root:rootpw"},
	{args: "user revoke-role alice app1 --user root:rootpw"},
	{args: "user passwd alice --interactive=false --user root:rootpw", stdin: "newpw\n"},
	{args: "get /app1/x --user alice:alicepw"},
	{args: "put /app1/w again --user alice:newpw"},
	{args: "user delete bob --user root:rootpw"},
	{args: "user delete bob --user root:rootpw"},
	{args: "role delete app2 --user root:rootpw"},
	{args: "user delete root --user root:rootpw"},
	{args: "role delete root --user root:rootpw"},
	{args: "user revoke-role root root --user root:rootpw"},
	{args: "lease revoke {L1} --user root:rootpw"},
	{args: "compaction 3 --user root:rootpw"},
	{args: "auth disable --user root:rootpw"},
	{args: "auth status"},
	{args: "user list"},
	{args: "get /app1/x"},
}

// TestEtcdctlAuthAgainstTendServer runs the real etcdctl's user, role and
// auth commands, and KV, watch and lease commands as different users,
// against `tend server` and a real etcd server, and compares what etcdctl
// prints.
func TestEtcdctlAuthAgainstTendServer(t *testing.T) {
	t.Parallel()
	etcd, etcdctl := testenv.EtcdBinaries(t)
	tend := buildTend(t)
	runners := []*ctlRunner{
		{t: t, etcdctl: etcdctl, srv: startServer(t, "oracle", etcd), dir: t.TempDir()},
		{t: t, etcdctl: etcdctl, srv: startServer(t, "tendmember", tend, "server"), dir: t.TempDir()},
	}
	for i, s := range ctlAuthSteps {
		want := runners[0].run(s)
		got := runners[1].run(s)
		if want != got {
			t.Errorf("step %d: etcdctl %s (stdin %q)\n  etcd: failed=%v stdout=%q stderr=%q\n  tend: failed=%v stdout=%q stderr=%q",
				i, s.args, s.stdin, want.failed, want.stdout, want.stderr, got.failed, got.stdout, got.stderr)
		}
	}
}

// TestEtcdctlAuthJWT runs the same session with JWT tokens (--auth-token
// jwt,...) on both servers: a token carries the auth revision it was issued
// at, so after each change clientv3 meets "revision of auth store is old",
// authenticates again and retries, and etcdctl prints the same.
func TestEtcdctlAuthJWT(t *testing.T) {
	t.Parallel()
	etcd, etcdctl := testenv.EtcdBinaries(t)
	tend := buildTend(t)
	priv, pub := jwtKeys(t)
	flag := "--auth-token=jwt,sign-method=RS256,priv-key=" + priv + ",pub-key=" + pub + ",ttl=5m"
	runners := []*ctlRunner{
		{t: t, etcdctl: etcdctl, srv: startServer(t, "oracle", etcd, flag), dir: t.TempDir()},
		{t: t, etcdctl: etcdctl, srv: startServer(t, "tendmember", tend, "server", flag), dir: t.TempDir()},
	}
	for i, s := range ctlAuthSteps {
		want := runners[0].run(s)
		got := runners[1].run(s)
		if want != got {
			t.Errorf("step %d: etcdctl %s (stdin %q)\n  etcd: failed=%v stdout=%q stderr=%q\n  tend: failed=%v stdout=%q stderr=%q",
				i, s.args, s.stdin, want.failed, want.stdout, want.stderr, got.failed, got.stdout, got.stderr)
		}
	}
}

// jwtKeys writes an RSA key pair in PEM and returns the files.
func jwtKeys(t *testing.T) (priv, pub string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub = filepath.Join(dir, "jwt.key"), filepath.Join(dir, "jwt.pub")
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string]*pem.Block{
		priv: {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)},
		pub:  {Type: "PUBLIC KEY", Bytes: pubDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return priv, pub
}
