package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/tendkv/tend/internal/testcert"
)

// startTLSNode runs a transport for member id whose listener speaks TLS
// with server (peer certificates required when server says so) and whose
// dials use client.
func startTLSNode(t *testing.T, id uint64, server, client *tls.Config) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMember(id)
	tr := New(Config{ID: id, ClusterID: 7, Raft: m, Logger: testLogger(), Dial: TLSDialer(client),
		Query: func() []byte { return []byte("members of 7") }})
	done := make(chan error, 1)
	go func() { done <- tr.Serve(TLSListener(l, server, testLogger())) }()
	t.Cleanup(func() {
		tr.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &node{member: m, t: tr, url: "https://" + l.Addr().String()}
}

// TestTLSPeers: streams flow over mutual TLS; a plain dialer is refused
// with a reason, a dialer without the CA's certificate fails, and the
// plain dialer refuses https:// URLs.
func TestTLSPeers(t *testing.T) {
	ca := testcert.NewCA(t, "peers")
	cfgs := func(cn string) (server, client *tls.Config) {
		p := ca.Issue(t, cn)
		server = &tls.Config{Certificates: []tls.Certificate{p.TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		return server, ca.ClientConfig(&p)
	}
	s1, c1 := cfgs("m1")
	s2, c2 := cfgs("m2")
	a, b := startTLSNode(t, 1, s1, c1), startTLSNode(t, 2, s2, c2)
	connect(a, b)
	a.t.Send([]*raftpb.Message{msg(1, 2, 1), msg(1, 2, 2)})
	expect(t, b.recv, 1, 2)
	b.t.Send([]*raftpb.Message{msg(2, 1, 1)})
	expect(t, a.recv, 1, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := Query(ctx, TLSDialer(c1), []string{b.url}); err != nil || string(got) != "members of 7" {
		t.Errorf("query over TLS: %q %v", got, err)
	}
	_, err := Query(ctx, nil, []string{strings.Replace(b.url, "https://", "http://", 1)})
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "speaks TLS") {
		t.Errorf("plain query of a TLS listener: %v", err)
	}
	if _, err := Query(ctx, nil, []string{b.url}); err == nil || !strings.Contains(err.Error(), "no peer TLS") {
		t.Errorf("plain dialer and an https:// URL: %v", err)
	}
	other := testcert.NewCA(t, "other").Issue(t, "mallory")
	bad := ca.ClientConfig(&other)
	if _, err := Query(ctx, TLSDialer(bad), []string{b.url}); err == nil {
		t.Error("a peer with another CA's certificate was answered")
	}
}
