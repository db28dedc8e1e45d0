package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// writeCert signs a certificate for 127.0.0.1 with parent (self-signed when
// parent is nil) and writes name.pem and name-key.pem into dir.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		IsCA:                  isCA,
		BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kb)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestTLSFlags: --cacert, --cert and --key reach a server that requires
// client certificates.
func TestTLSFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
	writeCert(t, dir, "server", false, ca, caKey)
	writeCert(t, dir, "client", false, ca, caKey)
	f := func(n string) string { return filepath.Join(dir, n) }
	ep, stop, err := startEtcdWith(filepath.Join(dir, "etcd"), "https", func(cfg *embed.Config) {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile: f("server.pem"), KeyFile: f("server-key.pem"), TrustedCAFile: f("ca.pem"), ClientCertAuth: true,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tls := []string{"--cacert", f("ca.pem"), "--cert", f("client.pem"), "--key", f("client-key.pem")}
	if r := tendAt(t, ep, nil, append(tls, "put", "/tls/k", "secret")...); r.err != nil {
		t.Fatalf("put over TLS: %v %s", r.err, r.stderr)
	}
	if r := tendAt(t, ep, nil, append(tls, "get", "/tls/k")...); r.err != nil || string(r.stdout) != "secret" {
		t.Fatalf("get over TLS: %v %q %s", r.err, r.stdout, r.stderr)
	}
	// Without the client certificate the server refuses.
	r := tendAt(t, ep, nil, "--cacert", f("ca.pem"), "--command-timeout", "1s", "get", "/tls/k")
	if r.err == nil {
		t.Error("get without a client certificate succeeded")
	}
	r = tendAt(t, ep, nil, "--cert", f("client.pem"), "get", "/tls/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "--cert and --key go together") {
		t.Errorf("--cert without --key: %v %q", r.err, r.stderr)
	}
}

// TestUserFlags: --user name:password and --user with --password
// authenticate against a server with authentication on.
func TestUserFlags(t *testing.T) {
	t.Parallel()
	ep, stop, err := startEtcd(filepath.Join(t.TempDir(), "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, "root", "rootpw"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	if r := tendAt(t, ep, nil, "--user", "root:rootpw", "put", "/auth/k", "v"); r.err != nil {
		t.Fatalf("put as root: %v %s", r.err, r.stderr)
	}
	if r := tendAt(t, ep, nil, "--user", "root", "--password", "rootpw", "get", "/auth/k"); r.err != nil || string(r.stdout) != "v" {
		t.Fatalf("get as root: %v %q %s", r.err, r.stdout, r.stderr)
	}
	if r := tendAt(t, ep, nil, "get", "/auth/k"); r.err == nil || !strings.Contains(string(r.stderr), "user name is empty") {
		t.Errorf("get without a user: %v %q", r.err, r.stderr)
	}
	if r := tendAt(t, ep, nil, "--user", "root:wrong", "get", "/auth/k"); r.err == nil || !strings.Contains(string(r.stderr), "authentication failed") {
		t.Errorf("get with a wrong password: %v %q", r.err, r.stderr)
	}
}
