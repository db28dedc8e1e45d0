package cluster

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/v3rpc"
	"github.com/tendkv/tend/internal/testcert"
)

// TestAuthByCertificateCommonName: with auth on, a client that presents a
// verified certificate and no token is the user its common name names (a
// user added with --no-password), as etcd with --client-cert-auth does.
// This one serves the API with v3rpc's own TLS option, on the member;
// TestAuthByCertificateCommonNameOverHTTPS uses the member's https://
// listeners.
func TestAuthByCertificateCommonName(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	ctx := ctx(t)
	admin := client(t, m)
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "app1"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "app1", "/app1/", clientv3.GetPrefixRangeEnd("/app1/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := admin.UserAddWithOptions(ctx, "cn-client", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "cn-client", "app1"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	ca := testcert.NewCA(t, "test CA")
	serverCert := ca.Issue(t, "127.0.0.1").TLS
	clientCert := ca.Issue(t, "cn-client").TLS
	strangerCert := ca.Issue(t, "mallory").TLS
	pool := ca.Pool()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := v3rpc.NewServer(m, v3rpc.Options{
		MaxRequestBytes: DefaultMaxRequestBytes,
		MaxTxnOps:       DefaultMaxTxnOps,
		TLS: &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			ClientCAs:    pool,
			ClientAuth:   tls.VerifyClientCertIfGiven,
			MinVersion:   tls.VersionTLS12,
		},
	})
	go gs.Serve(l) // ends when the test stops gs
	t.Cleanup(gs.Stop)

	dial := func(cert tls.Certificate, user, password string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{l.Addr().String()},
			DialTimeout: 5 * time.Second,
			TLS:         &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			Username:    user,
			Password:    password,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatalf("connect over TLS: %v", err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	cn := dial(clientCert, "", "")
	if _, err := cn.Put(ctx, "/app1/x", "by certificate"); err != nil {
		t.Errorf("cn-client writes /app1/x: %v", err)
	}
	if r, err := cn.Get(ctx, "/app1/x"); err != nil || r.Count != 1 {
		t.Errorf("cn-client reads /app1/x: %v %v", r, err)
	}
	if _, err := cn.Get(ctx, "/app2/x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("cn-client reads /app2/x: %v, want permission denied", err)
	}
	// A certificate naming no user is no one's: the checks find no user.
	if _, err := dial(strangerCert, "", "").Get(ctx, "/app1/x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("mallory's certificate reads /app1/x: %v, want permission denied", err)
	}
	// A token wins over the certificate: root logs in over cn-client's
	// connection certificate and reads everything.
	if _, err := dial(clientCert, "root", "rootpw").Get(ctx, "/app2/x"); err != nil {
		t.Errorf("root's token over cn-client's certificate: %v", err)
	}
	// A user without a password cannot log in with one.
	if _, err := cn.Authenticate(ctx, "cn-client", "guess"); err == nil {
		t.Error("cn-client authenticated with a password")
	}
}
