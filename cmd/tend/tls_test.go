package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testcert"
	"github.com/tendkv/tend/internal/testenv"
)

// TestServerTLS runs two `tend server` processes with https:// client and
// peer URLs and client certificates required on both sides, and uses them
// with tend's client and the real etcdctl (--cacert, --cert, --key).
func TestServerTLS(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	base := t.TempDir()
	clientCA, peerCA := testcert.NewCA(t, "clients"), testcert.NewCA(t, "peers")
	ps := make([]*memberProc, 2)
	var initial []string
	for i := range ps {
		name := fmt.Sprintf("s%d", i+1)
		ps[i] = &memberProc{
			name:      name,
			clientURL: fmt.Sprintf("https://127.0.0.1:%d", freeport.Port(t)),
			peerURL:   fmt.Sprintf("https://127.0.0.1:%d", freeport.Port(t)),
			dataDir:   filepath.Join(base, name),
		}
		initial = append(initial, name+"="+ps[i].peerURL)
	}
	for _, p := range ps {
		c, pp := clientCA.Issue(t, p.name), peerCA.Issue(t, p.name+"-peer")
		p.start(t, strings.Join(initial, ","), "new",
			"--cert-file", c.CertFile, "--key-file", c.KeyFile, "--trusted-ca-file", clientCA.CertFile, "--client-cert-auth",
			"--peer-cert-file", pp.CertFile, "--peer-key-file", pp.KeyFile, "--peer-trusted-ca-file", peerCA.CertFile, "--peer-client-cert-auth")
	}
	alice := clientCA.Issue(t, "alice")
	creds := []string{"--cacert", clientCA.CertFile, "--cert", alice.CertFile, "--key", alice.KeyFile}

	// Both members healthy (a leader, over TLS on both sides).
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range ps {
		for {
			r := tendAt(t, p.clientURL, nil, append(creds, "--command-timeout", "1s", "endpoint", "health")...)
			if r.err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy within 30s: %s\n%s", p.name, r.stderr, p.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	okAt(t, ps[0].clientURL, append(creds, "put", "/tls/k", "secret")...)
	want(t, "get through the other member", okAt(t, ps[1].clientURL, append(creds, "get", "/tls/k")...), "secret")

	ctl := func(ep string, args ...string) (string, error) {
		cmd := exec.Command(etcdctl, append(append([]string{"--endpoints", ep}, creds...), args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("%w: %s", err, errb.String())
		}
		return out.String(), nil
	}
	if out, err := ctl(ps[1].clientURL, "put", "/tls/ctl", "by etcdctl"); err != nil || out != "OK\n" {
		t.Fatalf("etcdctl put over TLS: %q %v", out, err)
	}
	if out, err := ctl(ps[0].clientURL, "get", "--prefix", "/tls/"); err != nil || out != "/tls/ctl\nby etcdctl\n/tls/k\nsecret\n" {
		t.Errorf("etcdctl get over TLS: %q %v", out, err)
	}
	if out, err := ctl(ps[0].clientURL+","+ps[1].clientURL, "endpoint", "health"); err != nil || strings.Count(out, "is healthy") != 2 {
		t.Errorf("etcdctl endpoint health over TLS: %q %v", out, err)
	}
	if out, err := ctl(ps[0].clientURL, "member", "list"); err != nil || strings.Count(out, "https://") != 4 {
		t.Errorf("etcdctl member list over TLS: %q %v", out, err)
	}
	if out, err := ctl(ps[0].clientURL, "lease", "grant", "60"); err != nil || !strings.Contains(out, "granted with TTL(60s)") {
		t.Errorf("etcdctl lease grant over TLS: %q %v", out, err)
	} else {
		id := strings.Fields(out)[1]
		// Keep-alives on a follower go to the leader, over TLS.
		for _, p := range ps {
			if out, err := ctl(p.clientURL, "lease", "keep-alive", "--once", id); err != nil || !strings.Contains(out, "keepalived with TTL(60)") {
				t.Errorf("etcdctl lease keep-alive on %s: %q %v", p.name, out, err)
			}
		}
	}
	// etcdctl without the client certificate is refused.
	cmd := exec.Command(etcdctl, "--endpoints", ps[0].clientURL, "--cacert", clientCA.CertFile, "--command-timeout", "2s", "get", "/tls/k")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("etcdctl without a client certificate: %s", out)
	}

	// tend's errors name the fix.
	r := tendAt(t, ps[0].clientURL, nil, "--cacert", clientCA.CertFile, "--command-timeout", "1s", "get", "/tls/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "give --cert and --key") {
		t.Errorf("tend without a client certificate: %v %s", r.err, r.stderr)
	}
	r = tendAt(t, ps[0].clientURL, nil, "--cert", alice.CertFile, "--key", alice.KeyFile, "--command-timeout", "1s", "get", "/tls/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "--cacert") {
		t.Errorf("tend without the CA: %v %s", r.err, r.stderr)
	}
	began := time.Now()
	r = tendAt(t, strings.TrimPrefix(ps[0].clientURL, "https://"), nil, "get", "/tls/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "serves TLS") {
		t.Errorf("tend in plain text to an https:// port: %v %s", r.err, r.stderr)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("tend in plain text to an https:// port took %v", d)
	}
}

// TestServerRejectsMalformedCertificate: `tend server` with a malformed
// certificate exits at once naming the flag and the file.
func TestServerRejectsMalformedCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testcert.NewCA(t, "ca")
	good := ca.Issue(t, "member")
	bad := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tendBin, "server", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", fmt.Sprintf("https://127.0.0.1:%d", freeport.Port(t)),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t)),
		"--cert-file", bad, "--key-file", good.KeyFile)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("tend server with a malformed certificate still running after 20s")
	}
	if err == nil || !strings.Contains(string(out), "--cert-file") || !strings.Contains(string(out), "certificate file "+bad) {
		t.Errorf("tend server with a malformed certificate: %v\n%s", err, out)
	}
}
