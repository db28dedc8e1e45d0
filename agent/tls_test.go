package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/clustertest"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testcert"
)

// tlsBackends are the stores the TLS tests run against: an embedded etcd
// and a tend member, each serving https with a certificate from ca and
// requiring client certificates from it. start returns the endpoint.
var tlsBackends = []struct {
	name  string
	start func(t *testing.T, ca *testcert.CA) string
}{
	{"etcd", startEtcdTLS},
	{"tend", func(t *testing.T, ca *testcert.CA) string { return clustertest.StartTLS(t, ca).ClientURLs()[0] }},
}

// startEtcdTLS starts an embedded etcd serving https clients, which must
// show a certificate from ca.
func startEtcdTLS(t *testing.T, ca *testcert.CA) string {
	server := ca.Issue(t, "etcd")
	client := strings.Replace(freeport.URL(t), "http://", "https://", 1)
	cfg := etcdConfig(t.TempDir(), client, "http://127.0.0.1:0")
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: server.CertFile, KeyFile: server.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true,
	}
	e := runEtcd(t, cfg)
	t.Cleanup(e.Close)
	return client
}

// TestAgentPicksUpRotatedClientCertificate: the store (an embedded etcd,
// then a tend member) requires client certificates from its CA; the agent
// starts with a certificate from another CA and cannot get in. Replacing
// its certificate and key files with ones the store trusts lets it in — no
// restart, as with short-lived certificates a tool renews on disk.
func TestAgentPicksUpRotatedClientCertificate(t *testing.T) {
	for _, b := range tlsBackends {
		t.Run(b.name, func(t *testing.T) { testRotatedClientCertificate(t, b.start) })
	}
}

func testRotatedClientCertificate(t *testing.T, start func(*testing.T, *testcert.CA) string) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	ep := start(t, ca)
	admin := ca.Issue(t, "admin")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, TLS: ca.ClientConfig(&admin), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/app/level", "debug"); err != nil {
		t.Fatal(err)
	}

	keys := t.TempDir()
	certFile, keyFile := filepath.Join(keys, "agent.pem"), filepath.Join(keys, "agent-key.pem")
	other.IssueTo(t, "agent", certFile, keyFile) // a CA the store does not trust
	h := startAgent(t, ep, ep, `
store {
  endpoints    = ["`+ep+`"]
  dial_timeout = "1s"
  tls {
    ca_file   = "`+ca.CertFile+`"
    cert_file = "`+certFile+`"
    key_file  = "`+keyFile+`"
  }
}
template "app" {
  contents    = "level={{ key \"/app/level\" }}"
  destination = "$DIR/app.conf"
}
`, nil)
	// Refused at the handshake: nothing is rendered.
	waitFor(t, "the agent refused by the store", 20*time.Second, func() bool {
		return h.logs.count("store unreachable") > 0
	})
	if _, err := os.Stat(h.path("app.conf")); err == nil {
		t.Fatal("rendered with a certificate the store does not trust")
	}
	// A renewed certificate from the store's CA, written over the old
	// files as a renewal tool would.
	ca.IssueTo(t, "agent", certFile, keyFile)
	waitFor(t, "app.conf rendered with the rotated certificate", 60*time.Second, func() bool {
		b, err := os.ReadFile(h.path("app.conf"))
		return err == nil && string(b) == "level=debug"
	})
}
