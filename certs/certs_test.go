package certs

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/testcert"
)

// TestLoadErrorsNameTheFile: every bad input stops Load with an error naming
// the file at fault.
func TestLoadErrorsNameTheFile(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	good := ca.Issue(t, "server")
	other := ca.Issue(t, "other")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage.pem", "not a certificate\n")
	empty := write("empty.pem", "")
	truncated := write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name  string
		files Files
		want  []string
	}{
		{"cert garbage", Files{CertFile: garbage, KeyFile: good.KeyFile}, []string{"certificate file " + garbage, "no PEM"}},
		{"cert empty", Files{CertFile: empty, KeyFile: good.KeyFile}, []string{"certificate file " + empty, "empty"}},
		{"cert truncated", Files{CertFile: truncated, KeyFile: good.KeyFile}, []string{"certificate file " + truncated, "certificate 1"}},
		{"cert missing", Files{CertFile: missing, KeyFile: good.KeyFile}, []string{"certificate file " + missing, "no such file"}},
		{"key garbage", Files{CertFile: good.CertFile, KeyFile: garbage}, []string{"key file " + garbage, "no PEM private key"}},
		{"key of another cert", Files{CertFile: good.CertFile, KeyFile: other.KeyFile}, []string{"key file " + other.KeyFile, good.CertFile, "does not match"}},
		{"key without cert", Files{KeyFile: good.KeyFile}, []string{"go together"}},
		{"ca garbage", Files{CAFile: garbage}, []string{"trusted CA file " + garbage, "no PEM"}},
		{"ca missing", Files{CAFile: missing}, []string{"trusted CA file " + missing}},
	} {
		_, err := Load(tc.files, nil)
		if err == nil {
			t.Errorf("%s: Load succeeded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
	if _, err := Load(Files{CertFile: good.CertFile, KeyFile: good.KeyFile, CAFile: ca.CertFile}, nil); err != nil {
		t.Errorf("good files: %v", err)
	}
}

// handshake runs one TLS handshake between the configs over loopback and
// returns the common name of the certificate the server presented and
// each side's error.
func handshake(t *testing.T, server, client *tls.Config) (serverCN string, serr, cerr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		sc := tls.Server(c, server)
		err = sc.Handshake()
		if err == nil {
			// Under TLS 1.3 the client learns of a refused certificate
			// on its first read.
			_, err = sc.Write([]byte{1})
		}
		done <- err
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cc := tls.Client(c, client)
	cerr = cc.Handshake()
	if cerr == nil {
		_, cerr = cc.Read(make([]byte, 1))
		if cs := cc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			serverCN = cs.PeerCertificates[0].Subject.CommonName
		}
	}
	c.Close()
	serr = <-done
	return serverCN, serr, cerr
}

// TestRotation: a new certificate or CA on disk counts from the next
// handshake; a malformed one keeps what works.
func TestRotation(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	caFile := filepath.Join(dir, "ca.pem")
	copyFile(t, ca.CertFile, caFile)
	ca.IssueTo(t, "server-1", certFile, keyFile)
	src, err := Load(Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	server := src.ServerConfig(true, nil)
	alice := ca.Issue(t, "alice")

	clientCfg := ca.ClientConfig(&alice)
	clientCfg.ServerName = "127.0.0.1"
	if cn, serr, cerr := handshake(t, server, clientCfg); serr != nil || cerr != nil || cn != "server-1" {
		t.Fatalf("first handshake: cn %q, server %v, client %v", cn, serr, cerr)
	}

	ca.IssueTo(t, "server-2", certFile, keyFile)
	if cn, _, cerr := handshake(t, server, clientCfg); cerr != nil || cn != "server-2" {
		t.Fatalf("after rotation: cn %q, %v; want server-2", cn, cerr)
	}

	// A broken rotation: the old certificate stays.
	testcert.WriteFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))
	if cn, _, cerr := handshake(t, server, clientCfg); cerr != nil || cn != "server-2" {
		t.Fatalf("after a malformed rotation: cn %q, %v; want server-2 still", cn, cerr)
	}
	ca.IssueTo(t, "server-3", certFile, keyFile)
	if cn, _, cerr := handshake(t, server, clientCfg); cerr != nil || cn != "server-3" {
		t.Fatalf("after a good rotation again: cn %q, %v; want server-3", cn, cerr)
	}

	// A new CA: alice's certificate no longer verifies, bob's from the
	// new CA does.
	ca2 := testcert.NewCA(t, "ca2")
	copyFile(t, ca2.CertFile, caFile)
	if _, serr, _ := handshake(t, server, clientCfg); serr == nil {
		t.Fatal("a client of the old CA was accepted after the CA file changed")
	}
	bob := ca2.Issue(t, "bob")
	bobCfg := ca.ClientConfig(&bob) // trusts the old CA, which signed the server's
	bobCfg.ServerName = "127.0.0.1"
	if _, serr, cerr := handshake(t, server, bobCfg); serr != nil || cerr != nil {
		t.Fatalf("a client of the new CA: server %v, client %v", serr, cerr)
	}
}

// TestClientConfig: the client side presents the current pair and verifies
// servers against the current CA file.
func TestClientConfig(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	serverPair := ca.Issue(t, "server")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "c-key.pem")
	caFile := filepath.Join(dir, "ca.pem")
	copyFile(t, ca.CertFile, caFile)
	ca.IssueTo(t, "member-1", certFile, keyFile)
	src, err := Load(Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	server := &tls.Config{
		Certificates: []tls.Certificate{serverPair.TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = cs.PeerCertificates[0].Subject.CommonName
			return nil
		},
	}
	client := src.ClientConfig(true)
	client.ServerName = "127.0.0.1"
	if _, serr, cerr := handshake(t, server, client); serr != nil || cerr != nil || seen != "member-1" {
		t.Fatalf("handshake: server %v, client %v, client cert %q", serr, cerr, seen)
	}
	ca.IssueTo(t, "member-2", certFile, keyFile)
	if _, serr, cerr := handshake(t, server, client); serr != nil || cerr != nil || seen != "member-2" {
		t.Fatalf("after rotation: server %v, client %v, client cert %q", serr, cerr, seen)
	}
	// The wrong name fails verification.
	wrong := src.ClientConfig(true)
	wrong.ServerName = "example.com"
	if _, _, cerr := handshake(t, server, wrong); cerr == nil {
		t.Error("a server certificate for 127.0.0.1 verified as example.com")
	}
	// Another CA in the file: the server no longer verifies.
	copyFile(t, testcert.NewCA(t, "other").CertFile, caFile)
	if _, _, cerr := handshake(t, server, client); cerr == nil {
		t.Error("the server verified after the CA file changed to another CA")
	}
	// Without verification, anything goes.
	if _, serr, cerr := handshake(t, server, src.ClientConfig(false)); serr != nil || cerr != nil {
		t.Errorf("without verification: server %v, client %v", serr, cerr)
	}
}

// TestMinimumTLS12: neither side speaks below TLS 1.2.
func TestMinimumTLS12(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	p := ca.Issue(t, "server")
	src, err := Load(Files{CertFile: p.CertFile, KeyFile: p.KeyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, serr, _ := handshake(t, src.ServerConfig(false, nil), old); serr == nil || !strings.Contains(serr.Error(), "version") {
		t.Errorf("a TLS 1.1 client: %v, want a version error", serr)
	}
	if c := src.ClientConfig(true); c.MinVersion != tls.VersionTLS12 {
		t.Errorf("client MinVersion %x", c.MinVersion)
	}
}

// TestSelfSigned: the auto-TLS pair is created once, loads, and names the
// hosts.
func TestSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fixtures", "client")
	f, err := SelfSigned(dir, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := src.Certificate().Leaf
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	f2, err := SelfSigned(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil || f2 != f {
		t.Fatalf("second SelfSigned: %v %v", f2, err)
	}
	src2, _ := Load(f2, nil)
	if !src2.Certificate().Leaf.Equal(leaf) {
		t.Error("SelfSigned made a new pair although one existed")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	testcert.WriteFile(t, to, b)
}
