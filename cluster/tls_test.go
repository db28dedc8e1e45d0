package cluster

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testcert"
)

// httpsURLs rewrites the member's URLs (and the initial cluster's) to
// https://.
func httpsURLs(cfg *Config, client, peer bool) {
	to := func(urls []string) []string {
		out := make([]string, len(urls))
		for i, u := range urls {
			out[i] = strings.Replace(u, "http://", "https://", 1)
		}
		return out
	}
	if client {
		cfg.ListenClientURLs = to(cfg.ListenClientURLs)
		cfg.AdvertiseClientURLs = to(cfg.AdvertiseClientURLs)
	}
	if peer {
		cfg.ListenPeerURLs = to(cfg.ListenPeerURLs)
		cfg.InitialAdvertisePeerURLs = to(cfg.InitialAdvertisePeerURLs)
		cfg.InitialCluster = strings.ReplaceAll(cfg.InitialCluster, "http://", "https://")
	}
}

// tlsClient connects clientv3 to endpoints with tc; Cleanup closes it.
func tlsClient(t *testing.T, endpoints []string, tc *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         tc,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// tlsMember starts one member serving https:// with the CA's certificate
// for it, requiring client certificates the CA signed.
func tlsMember(t *testing.T, ca *testcert.CA) (*Member, testcert.Pair) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	httpsURLs(&cfg, true, false)
	server := ca.Issue(t, "member")
	cfg.ClientTLS = TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true}
	m := start(t, cfg)
	if u := m.ClientURLs()[0]; !strings.HasPrefix(u, "https://") {
		t.Fatalf("client URL %s, want https://", u)
	}
	return m, server
}

// dialTLS handshakes with addr as a client with tc and reads once: under
// TLS 1.3 a refused client certificate shows on the first read.
func dialTLS(addr string, tc *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// TestClientTLS: with --client-cert-auth, clients with a certificate the
// trusted CA signed use gRPC, health and the JSON gateway over https; the
// rest are refused at the handshake, and plain clients fail at once with an
// error that says why.
func TestClientTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	m, _ := tlsMember(t, ca)
	alice := ca.Issue(t, "alice")
	u, _ := url.Parse(m.ClientURLs()[0])
	addr := u.Host

	cli := tlsClient(t, m.ClientURLs(), ca.ClientConfig(&alice))
	if _, err := cli.Put(ctx(t), "k", "over TLS"); err != nil {
		t.Fatalf("put over mTLS: %v", err)
	}
	if r, err := cli.Get(ctx(t), "k"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "over TLS" {
		t.Fatalf("get over mTLS: %v %v", r, err)
	}

	// HTTP/1.1 on the same port: health and the JSON gateway, whose own
	// connection to the member's gRPC is TLS with the member's certificate.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(&alice), ForceAttemptHTTP2: true}}
	get := func(method, path, body string) (int, string, *http.Response) {
		t.Helper()
		req, _ := http.NewRequest(method, m.ClientURLs()[0]+path, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp
	}
	if code, body, _ := get("GET", "/health", ""); code != 200 || !strings.Contains(body, `"health":"true"`) {
		t.Errorf("GET /health over https = %d %s", code, body)
	}
	b64 := base64.StdEncoding.EncodeToString
	if code, body, _ := get("POST", "/v3/kv/range", `{"key":"`+b64([]byte("k"))+`"}`); code != 200 || !strings.Contains(body, b64([]byte("over TLS"))) {
		t.Errorf("gateway range over https = %d %s", code, body)
	}

	// Refused at the handshake: no certificate, another CA's, a CA-signed
	// certificate for a client that does not trust the server's CA.
	other := testcert.NewCA(t, "other")
	mallory := other.Issue(t, "mallory")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"no certificate", ca.ClientConfig(nil)},
		{"another CA's certificate", ca.ClientConfig(&mallory)},
		{"TLS 1.1", func() *tls.Config {
			c := ca.ClientConfig(&alice)
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}()},
	} {
		if err := dialTLS(addr, tc.cfg); err == nil {
			t.Errorf("%s: handshake succeeded", tc.name)
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: m.ClientURLs(), DialTimeout: time.Second, TLS: tc.cfg, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(c, "k")
		cancel()
		cli.Close()
		if err == nil {
			t.Errorf("%s: get succeeded", tc.name)
		}
	}
	if err := dialTLS(addr, ca.ClientConfig(&alice)); err != nil {
		t.Errorf("alice's handshake: %v", err)
	}

	// Plain gRPC fails at once, with the fix in the message.
	plain, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	began := time.Now()
	_, err = plain.Get(ctx(t), "k")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "serves TLS") {
		t.Errorf("plain gRPC get: %v, want FailedPrecondition saying the port serves TLS", err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("plain gRPC get took %v", d)
	}
	// Plain HTTP gets net/http's answer.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("plain GET /health: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
		t.Errorf("plain GET /health = %d %q", resp.StatusCode, b)
	}
}

// TestClientTLSRotation: a certificate or CA replaced on disk serves new
// connections without a restart; connections already open keep working; a
// malformed replacement keeps the certificate in use.
func TestClientTLSRotation(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	m, server := tlsMember(t, ca)
	u, _ := url.Parse(m.ClientURLs()[0])
	alice := ca.Issue(t, "alice")
	servedCN := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", u.Host, ca.ClientConfig(&alice))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := servedCN(); cn != "member" {
		t.Fatalf("served %q", cn)
	}
	open := tlsClient(t, m.ClientURLs(), ca.ClientConfig(&alice))
	if _, err := open.Put(ctx(t), "k", "1"); err != nil {
		t.Fatal(err)
	}

	ca.IssueTo(t, "member-rotated", server.CertFile, server.KeyFile)
	if cn := servedCN(); cn != "member-rotated" {
		t.Errorf("after rotation served %q, want member-rotated", cn)
	}
	if _, err := open.Put(ctx(t), "k", "2"); err != nil {
		t.Errorf("a connection opened before the rotation: %v", err)
	}
	fresh := tlsClient(t, m.ClientURLs(), ca.ClientConfig(&alice))
	if _, err := fresh.Get(ctx(t), "k"); err != nil {
		t.Errorf("a client after the rotation: %v", err)
	}

	// Malformed: the last good certificate stays.
	testcert.WriteFile(t, server.CertFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if cn := servedCN(); cn != "member-rotated" {
		t.Errorf("after a malformed rotation served %q, want member-rotated", cn)
	}

	// A new client CA: alice's certificate is refused on new connections,
	// bob's (from the new CA) accepted. The trusted CA file is the
	// member's TrustedCAFile.
	ca2 := testcert.NewCA(t, "ca2")
	bob := ca2.Issue(t, "bob")
	ca2PEM, err := os.ReadFile(ca2.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	testcert.WriteFile(t, m.cfg.ClientTLS.TrustedCAFile, ca2PEM)
	if err := dialTLS(u.Host, ca.ClientConfig(&alice)); err == nil {
		t.Error("alice (old CA) accepted after the trusted CA changed")
	}
	if err := dialTLS(u.Host, ca.ClientConfig(&bob)); err != nil {
		t.Errorf("bob (new CA): %v", err)
	}
}

// TestStartRejectsBadTLS: a malformed or missing file stops the member at
// start with an error naming the flag and the file; an https:// URL
// without certificates names the flags to give.
func TestStartRejectsBadTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	good := ca.Issue(t, "member")
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"malformed cert", func(c *Config) {
			httpsURLs(c, true, false)
			c.ClientTLS = TLSFiles{CertFile: bad, KeyFile: good.KeyFile}
		}, []string{"--cert-file", bad}},
		{"malformed peer CA", func(c *Config) {
			httpsURLs(c, false, true)
			c.PeerTLS = TLSFiles{CertFile: good.CertFile, KeyFile: good.KeyFile, TrustedCAFile: bad}
		}, []string{"--peer-trusted-ca-file", "trusted CA file " + bad}},
		{"https without certificates", func(c *Config) { httpsURLs(c, true, false) }, []string{"--listen-client-urls https://", "--cert-file and --key-file"}},
		{"https peers without certificates", func(c *Config) { httpsURLs(c, false, true) }, []string{"https://", "--peer-cert-file"}},
		{"cert without key", func(c *Config) { c.ClientTLS.CertFile = good.CertFile }, []string{"--cert-file and --key-file go together"}},
		{"client-cert-auth without CA", func(c *Config) {
			c.ClientTLS = TLSFiles{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCertAuth: true}
		}, []string{"--client-cert-auth", "--trusted-ca-file"}},
	} {
		cfg := testConfig(t, t.TempDir())
		tc.change(&cfg)
		m, err := StartMember(context.Background(), cfg)
		if err == nil {
			m.Close()
			t.Errorf("%s: started", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
}

// TestAutoTLS: --auto-tls and --peer-auto-tls serve self-signed
// certificates kept in the data dir.
func TestAutoTLS(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	httpsURLs(&cfg, true, true)
	cfg.ClientTLS.AutoTLS = true
	cfg.PeerTLS.AutoTLS = true
	m := start(t, cfg)
	cli := tlsClient(t, m.ClientURLs(), &tls.Config{InsecureSkipVerify: true})
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatalf("put over auto TLS: %v", err)
	}
	for _, side := range []string{"client", "peer"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "fixtures", side, "cert.pem")); err != nil {
			t.Errorf("%s auto TLS certificate: %v", side, err)
		}
	}
}

// peerTLS configures every member of a cluster for https:// clients and
// peers: client certificates from clientCA, peer certificates from
// peerCA, both required. bad names a member whose peer certificate
// another CA signed.
func peerTLS(t *testing.T, clientCA, peerCA *testcert.CA, bad string) func(*Config) {
	impostor := testcert.NewCA(t, "impostor")
	return func(cfg *Config) {
		httpsURLs(cfg, true, true)
		c := clientCA.Issue(t, cfg.Name+"-client")
		cfg.ClientTLS = TLSFiles{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: clientCA.CertFile, ClientCertAuth: true}
		signer := peerCA
		if cfg.Name == bad {
			signer = impostor
		}
		p := signer.Issue(t, cfg.Name+"-peer")
		cfg.PeerTLS = TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, TrustedCAFile: peerCA.CertFile, ClientCertAuth: true}
	}
}

// TestPeerTLS: three members over https:// peer URLs with
// --peer-client-cert-auth replicate; a follower forwards lease calls to
// the leader's https:// client URL with its own certificate.
func TestPeerTLS(t *testing.T) {
	clientCA, peerCA := testcert.NewCA(t, "clients"), testcert.NewCA(t, "peers")
	c := newTestCluster(t, 3, peerTLS(t, clientCA, peerCA, ""))
	alice := clientCA.Issue(t, "alice")
	lead := c.waitLeader()
	follower := (lead + 1) % 3
	cli := tlsClient(t, c.member(follower).ClientURLs(), clientCA.ClientConfig(&alice))
	if _, err := cli.Put(ctx(t), "k", "over peer TLS"); err != nil {
		t.Fatalf("put through a follower: %v", err)
	}
	other := tlsClient(t, c.member((lead+2)%3).ClientURLs(), clientCA.ClientConfig(&alice))
	if r, err := other.Get(ctx(t), "k"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("get on another member: %v %v", r, err)
	}
	lease, err := cli.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.KeepAliveOnce(ctx(t), lease.ID); err != nil {
		t.Errorf("keep-alive through a follower (forwarded over TLS): %v", err)
	}
	if r, err := cli.TimeToLive(ctx(t), lease.ID); err != nil || r.TTL <= 0 {
		t.Errorf("time-to-live through a follower: %v %v", r, err)
	}
	for _, mi := range c.member(lead).Members() {
		for _, u := range append(mi.PeerURLs, mi.ClientURLs...) {
			if !strings.HasPrefix(u, "https://") {
				t.Errorf("member %s advertises %s", mi.Name, u)
			}
		}
	}
}

// TestBadPeerCertificate: a member whose peer certificate another CA signed
// is refused at the handshake by the others: the two good members serve,
// and it never receives the log; a member dialling in plain TCP is told
// the peer URL speaks TLS.
func TestBadPeerCertificate(t *testing.T) {
	clientCA, peerCA := testcert.NewCA(t, "clients"), testcert.NewCA(t, "peers")
	opt := peerTLS(t, clientCA, peerCA, "m3")
	// As newTestCluster, without waiting for m3, which never gets ready.
	c := &testCluster{t: t, faults: transport.NewFaults()}
	var parts []string
	peers := make([]string, 3)
	for i := range 3 {
		peers[i] = freeport.URL(t)
		parts = append(parts, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	for i := range 3 {
		cfg := Config{
			Name:                     fmt.Sprintf("m%d", i+1),
			DataDir:                  t.TempDir(),
			ListenClientURLs:         []string{"http://127.0.0.1:0"},
			ListenPeerURLs:           []string{peers[i]},
			InitialAdvertisePeerURLs: []string{peers[i]},
			InitialCluster:           strings.Join(parts, ","),
			HeartbeatInterval:        multiHeartbeat,
			ElectionTimeout:          multiElection,
			Faults:                   c.faults,
			Logger:                   testLogger().With("test-member", i+1),
		}
		opt(&cfg)
		c.cfgs = append(c.cfgs, cfg)
	}
	cfgs := c.cfgs
	c.members = make([]*Member, 3)
	for i := range 3 {
		c.start(i)
	}
	t.Cleanup(c.closeAll)
	c.waitReady(0)
	c.waitReady(1)
	alice := clientCA.Issue(t, "alice")
	cli := tlsClient(t, c.member(0).ClientURLs(), clientCA.ClientConfig(&alice))
	for i := range 20 {
		if _, err := cli.Put(ctx(t), "k", string(rune('a'+i))); err != nil {
			t.Fatalf("put with two good members: %v", err)
		}
	}
	time.Sleep(3 * multiElection)
	select {
	case <-c.member(2).ReadyNotify():
		t.Fatal("the member with another CA's peer certificate became ready")
	default:
	}
	if got := c.member(2).AppliedIndex(); got > 3 {
		t.Errorf("the member with a bad peer certificate applied up to %d", got)
	}
	if r, err := cli.Get(ctx(t), "k"); err != nil || len(r.Kvs) != 1 {
		t.Errorf("get: %v %v", r, err)
	}

	// Plain TCP to an https:// peer URL: a refusal naming the fix.
	_, err := transport.Query(ctx(t), nil, []string{strings.Replace(cfgs[0].ListenPeerURLs[0], "https://", "http://", 1)})
	var re *transport.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "speaks TLS") {
		t.Errorf("plain query of an https:// peer URL: %v, want a refusal saying it speaks TLS", err)
	}
	// A joining member with another CA's certificate cannot ask for the
	// member list.
	impostor := testcert.NewCA(t, "impostor2").Issue(t, "joiner")
	mt, err := newMemberTLS(Config{PeerTLS: TLSFiles{CertFile: impostor.CertFile, KeyFile: impostor.KeyFile, TrustedCAFile: peerCA.CertFile}, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.Query(ctx(t), mt.peerDial(), cfgs[0].ListenPeerURLs); err == nil {
		t.Error("a peer with another CA's certificate queried the member list")
	}
}

// TestAuthByCertificateCommonNameOverHTTPS: with --client-cert-auth and
// auth on, a client presenting a verified certificate and no token is the
// user its common name names, on the member's own https:// listener and
// through a follower.
func TestAuthByCertificateCommonNameOverHTTPS(t *testing.T) {
	clientCA, peerCA := testcert.NewCA(t, "clients"), testcert.NewCA(t, "peers")
	c := newTestCluster(t, 3, peerTLS(t, clientCA, peerCA, ""))
	root := clientCA.Issue(t, "root")
	admin := tlsClient(t, c.member(0).ClientURLs(), clientCA.ClientConfig(&root))
	ctx := ctx(t)
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
	// root's certificate names root: no password needed.
	if _, err := admin.Put(ctx, "/app2/x", "by root's certificate"); err != nil {
		t.Errorf("root by certificate writes /app2/x: %v", err)
	}
	cnPair := clientCA.Issue(t, "cn-client")
	mallory := clientCA.Issue(t, "mallory")
	for i := range 3 {
		cn := tlsClient(t, c.member(i).ClientURLs(), clientCA.ClientConfig(&cnPair))
		if _, err := cn.Put(ctx, "/app1/x", "by certificate"); err != nil {
			t.Errorf("member %d: cn-client writes /app1/x: %v", i+1, err)
		}
		if _, err := cn.Get(ctx, "/app2/x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("member %d: cn-client reads /app2/x: %v, want permission denied", i+1, err)
		}
		m := tlsClient(t, c.member(i).ClientURLs(), clientCA.ClientConfig(&mallory))
		if _, err := m.Get(ctx, "/app1/x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("member %d: mallory reads /app1/x: %v, want permission denied", i+1, err)
		}
	}
	// A certificate-named user's lease calls through a follower: the
	// follower checks the caller, and asks the leader over the peer link.
	lead := c.waitLeader()
	follower := (lead + 1) % 3
	cn := tlsClient(t, c.member(follower).ClientURLs(), clientCA.ClientConfig(&cnPair))
	g, err := cn.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cn.Put(ctx, "/app1/leased", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if ka, err := cn.KeepAliveOnce(ctx, g.ID); err != nil || ka.TTL != 30 {
		t.Errorf("cn-client keeps its lease alive through a follower: %v, %v", ka, err)
	}
	if r, err := cn.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys()); err != nil || r.GrantedTTL != 30 || len(r.Keys) != 1 {
		t.Errorf("cn-client's lease TTL through a follower: %v, %v", r, err)
	}
	// ... and may not touch root's.
	rg, err := admin.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Put(ctx, "/app2/leased", "v", clientv3.WithLease(rg.ID)); err != nil {
		t.Fatal(err)
	}
	// The follower judges by its own state: let it apply the put first (a
	// linearizable read through it), as etcd's would have to.
	if _, err := cn.Get(ctx, "/app1/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := cn.KeepAliveOnce(ctx, rg.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("cn-client keeps root's lease alive through a follower: %v, want permission denied", err)
	}

	// The JSON gateway relays with the member's certificate, which names
	// no caller: without a token the call has no user.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientCA.ClientConfig(&cnPair)}}
	resp, err := hc.Post(c.member(0).ClientURLs()[0]+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"L2FwcDEveA=="}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("gateway range without a token = %d %s, want refused", resp.StatusCode, b)
	}
}

// TestPeerTLSRotation: a cluster moves from one peer CA to another without
// a restart of the members that rotate. The trusted CA bundle first holds
// both CAs, then each member's peer key pair is replaced on disk by one the
// new CA signed, then the bundle holds the new CA only. After each step
// every peer listener presents what its files hold and accepts or refuses
// a peer by the bundle it holds. Finally one member is stopped and started
// again: the two others dial it anew, and it accepts them (so they present
// their new certificates) and catches up on writes made while it was down.
func TestPeerTLSRotation(t *testing.T) {
	oldCA, newCA := testcert.NewCA(t, "peers"), testcert.NewCA(t, "peers-2")
	bundle := filepath.Join(t.TempDir(), "peer-ca.pem")
	readPEM := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	testcert.WriteFile(t, bundle, readPEM(oldCA.CertFile))
	pairs := map[string]testcert.Pair{}
	c := newTestCluster(t, 3, func(cfg *Config) {
		httpsURLs(cfg, false, true)
		p := oldCA.Issue(t, cfg.Name+"-peer")
		pairs[cfg.Name] = p
		cfg.PeerTLS = TLSFiles{CertFile: p.CertFile, KeyFile: p.KeyFile, TrustedCAFile: bundle, ClientCertAuth: true}
	})
	both := oldCA.Pool()
	both.AddCert(newCA.Cert)
	oldProbe, newProbe := oldCA.Issue(t, "probe-old"), newCA.Issue(t, "probe-new")
	probe := func(pair testcert.Pair) *tls.Config {
		return &tls.Config{RootCAs: both, Certificates: []tls.Certificate{pair.TLS}, MinVersion: tls.VersionTLS12}
	}
	// check dials every member's peer listener as a peer with each probe
	// certificate, and wants the certificate served and the verdicts.
	check := func(phase, servedSuffix string, servedBy *testcert.CA, oldOK, newOK bool) {
		t.Helper()
		for i, cfg := range c.cfgs {
			u, err := url.Parse(cfg.ListenPeerURLs[0])
			if err != nil {
				t.Fatal(err)
			}
			conn, err := tls.Dial("tcp", u.Host, probe(newProbe))
			if err != nil {
				t.Fatalf("%s: dial member %d's peer listener: %v", phase, i+1, err)
			}
			leaf := conn.ConnectionState().PeerCertificates[0]
			conn.Close()
			if want := cfg.Name + "-peer" + servedSuffix; leaf.Subject.CommonName != want || leaf.CheckSignatureFrom(servedBy.Cert) != nil {
				t.Errorf("%s: member %d presents %q issued by %q, want %q issued by %q", phase, i+1,
					leaf.Subject.CommonName, leaf.Issuer.CommonName, want, servedBy.Cert.Subject.CommonName)
			}
			for _, pc := range []struct {
				name string
				pair testcert.Pair
				ok   bool
			}{{"old CA's", oldProbe, oldOK}, {"new CA's", newProbe, newOK}} {
				if err := dialTLS(u.Host, probe(pc.pair)); (err == nil) != pc.ok {
					t.Errorf("%s: member %d, a peer with the %s certificate: err %v, want accepted=%v", phase, i+1, pc.name, err, pc.ok)
				}
			}
		}
	}
	put := func(v string) {
		t.Helper()
		if _, err := c.client(c.waitLeader()).Put(ctx(t), "k", v); err != nil {
			t.Fatalf("put k=%s: %v", v, err)
		}
	}

	put("old")
	check("at start", "", oldCA, true, false)

	testcert.WriteFile(t, bundle, append(readPEM(oldCA.CertFile), readPEM(newCA.CertFile)...))
	check("both CAs trusted", "", oldCA, true, true)

	for _, cfg := range c.cfgs {
		p := pairs[cfg.Name]
		newCA.IssueTo(t, cfg.Name+"-peer-2", p.CertFile, p.KeyFile)
	}
	check("new key pairs", "-2", newCA, true, true)

	testcert.WriteFile(t, bundle, readPEM(newCA.CertFile))
	check("new CA only", "-2", newCA, false, true)
	put("rotated") // the streams opened before go on

	lead := c.waitLeader()
	down := (lead + 1) % 3
	c.stop(down)
	put("while down")
	c.start(down)
	c.waitReady(down)
	put("after restart")
	cli := c.client(down)
	eventually(t, 20*time.Second, fmt.Sprintf("member %d, restarted, reads k=after restart", down+1), func() bool {
		r, err := cli.Get(ctx(t), "k", clientv3.WithSerializable())
		return err == nil && len(r.Kvs) == 1 && string(r.Kvs[0].Value) == "after restart"
	})
}

// TestHTTPSMetricsListener: an https:// --listen-metrics-urls speaks TLS
// with the client certificate and, with --client-cert-auth, requires a
// client certificate the CA signed; an http:// one needs no TLS setup, an
// https:// one without certificates is refused at start, naming the flag.
func TestHTTPSMetricsListener(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	cfg := testConfig(t, t.TempDir())
	httpsURLs(&cfg, true, false)
	server := ca.Issue(t, "member")
	cfg.ClientTLS = TLSFiles{CertFile: server.CertFile, KeyFile: server.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true}
	addr := freeport.Addr(t)
	cfg.ListenMetricsURLs = []string{"https://" + addr}
	start(t, cfg)
	alice := ca.Issue(t, "alice")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientConfig(&alice)}}
	resp, err := hc.Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics over https: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "etcd_server_has_leader 1") {
		t.Errorf("GET /metrics over https = %d, has_leader line missing", resp.StatusCode)
	}
	if err := dialTLS(addr, ca.ClientConfig(nil)); err == nil {
		t.Error("metrics listener: a client without a certificate got through the handshake")
	}

	bad := testConfig(t, t.TempDir())
	bad.ListenMetricsURLs = []string{"https://" + freeport.Addr(t)}
	if _, err := StartMember(ctx(t), bad); err == nil || !strings.Contains(err.Error(), "--listen-metrics-urls https://") || !strings.Contains(err.Error(), "--cert-file") {
		t.Errorf("https metrics URL without certificates: %v", err)
	}
}
