package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/clustertest"
	"github.com/tendkv/tend/internal/testcert"
)

// TestAgentOverTLS: the agent's store { tls { ca_file cert_file key_file
// server_name } } reaches a member that requires client certificates, and
// with auth on the certificate's common name is the agent's user, whose
// role reads only its application's prefix.
func TestAgentOverTLS(t *testing.T) {
	t.Parallel()
	ca := testcert.NewCA(t, "ca")
	m := clustertest.StartTLS(t, ca)
	ep := m.ClientURLs()[0]

	admin := ca.Issue(t, "admin")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, TLS: ca.ClientConfig(&admin), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := cli.Put(ctx, "/app1/config", "level=debug"); return err },
		func() error { _, err := cli.Put(ctx, "/app2/secret", "hunter2"); return err },
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "app1-read"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "app1-read", "/app1/", clientv3.GetPrefixRangeEnd("/app1/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			_, err := cli.UserAddWithOptions(ctx, "agent-app1", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := cli.UserGrantRole(ctx, "agent-app1", "app1-read"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	agentPair := ca.Issue(t, "agent-app1")
	dir := t.TempDir()
	render := func(key, tlsBlock string) result {
		t.Helper()
		hcl := fmt.Sprintf(`store {
  endpoints    = [%q]
  dial_timeout = "2s"
%s}
template "app" {
  contents    = "{{ key \"%s\" }}"
  destination = "app.conf"
}
`, ep, tlsBlock, key)
		if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(tendBin, "render", "--config", filepath.Join(dir, "agent.hcl"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return result{out.Bytes(), errb.Bytes(), err}
	}
	tlsBlock := fmt.Sprintf("  tls {\n    ca_file     = %q\n    cert_file   = %q\n    key_file    = %q\n    server_name = \"localhost\"\n  }\n",
		ca.CertFile, agentPair.CertFile, agentPair.KeyFile)

	if r := render("/app1/config", tlsBlock); r.err != nil {
		t.Fatalf("render over TLS as agent-app1: %v\n%s", r.err, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "app.conf")); string(b) != "level=debug" {
		t.Errorf("app.conf = %q", b)
	}
	// The certificate's user reads only its prefix.
	if r := render("/app2/secret", tlsBlock); r.err == nil || !strings.Contains(string(r.stderr), "permission denied") {
		t.Errorf("render of /app2/secret as agent-app1: %v %s", r.err, r.stderr)
	}
	// server_name is checked: the certificate does not name example.com.
	wrongName := strings.Replace(tlsBlock, `"localhost"`, `"example.com"`, 1)
	if r := render("/app1/config", wrongName); r.err == nil {
		t.Error("render with server_name example.com succeeded")
	}
	// Without a client certificate the member refuses the agent.
	noCert := fmt.Sprintf("  tls {\n    ca_file = %q\n  }\n", ca.CertFile)
	if r := render("/app1/config", noCert); r.err == nil {
		t.Error("render without a client certificate succeeded")
	}
}
