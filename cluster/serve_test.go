package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/cluster/autocompact"
)

// httpDo sends one HTTP request to the member's client URL and returns the
// status and body.
func httpDo(t *testing.T, m *Member, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, m.ClientURLs()[0]+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHTTP checks the HTTP side of the client port, next to gRPC: /health,
// /version and the JSON gateway, as etcd serves them.
func TestHTTP(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m) // gRPC on the same port

	if code, body := httpDo(t, m, "GET", "/health", ""); code != 200 || strings.TrimSpace(body) != `{"health":"true","reason":""}` {
		t.Errorf("/health = %d %s", code, body)
	}
	for _, path := range []string{"/livez", "/readyz", "/readyz/linearizable_read"} {
		if code, body := httpDo(t, m, "GET", path, ""); code != 200 || body != "ok\n" {
			t.Errorf("%s = %d %q, want 200 ok", path, code, body)
		}
	}
	if code, body := httpDo(t, m, "GET", "/readyz?verbose", ""); code != 200 || !strings.Contains(body, "[+]linearizable_read ok") {
		t.Errorf("/readyz?verbose = %d %q", code, body)
	}
	code, body := httpDo(t, m, "GET", "/version", "")
	var v map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &v) != nil || v["etcdserver"] == "" || v["etcdcluster"] == "" {
		t.Errorf("/version = %d %s", code, body)
	}

	b64 := base64.StdEncoding.EncodeToString
	if code, body := httpDo(t, m, "POST", "/v3/kv/put", `{"key":"`+b64([]byte("gw"))+`","value":"`+b64([]byte("json"))+`"}`); code != 200 {
		t.Fatalf("gateway put = %d %s", code, body)
	}
	get, err := cli.Get(ctx(t), "gw")
	if err != nil || len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "json" {
		t.Fatalf("get after gateway put = %v, %v", get, err)
	}
	code, body = httpDo(t, m, "POST", "/v3/kv/range", `{"key":"`+b64([]byte("gw"))+`"}`)
	if code != 200 || !strings.Contains(body, b64([]byte("json"))) {
		t.Fatalf("gateway range = %d %s", code, body)
	}

	// An alarm makes /health false unless excluded.
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx(t), &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: m.MemberID(), Alarm: pb.AlarmType_NOSPACE,
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := httpDo(t, m, "GET", "/health", ""); code != 503 || !strings.Contains(body, "ALARM NOSPACE") {
		t.Errorf("/health under NOSPACE = %d %s", code, body)
	}
	if code, body := httpDo(t, m, "GET", "/health?exclude=NOSPACE", ""); code != 200 {
		t.Errorf("/health excluding NOSPACE = %d %s", code, body)
	}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx(t), &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: m.MemberID(), Alarm: pb.AlarmType_CORRUPT,
	}); err != nil {
		t.Fatal(err)
	}
	if code, body := httpDo(t, m, "GET", "/readyz", ""); code != 503 || !strings.Contains(body, "[-]data_corruption failed") {
		t.Errorf("/readyz under CORRUPT = %d %q", code, body)
	}
	if code, body := httpDo(t, m, "GET", "/livez", ""); code != 200 {
		t.Errorf("/livez under CORRUPT = %d %q, want live", code, body)
	}
}

// With EnablePprof (etcd's --enable-pprof) the client URL serves Go's
// profiles under /debug/pprof/; without it, nothing is there.
func TestPprof(t *testing.T) {
	off := start(t, testConfig(t, t.TempDir()))
	if code, _ := httpDo(t, off, "GET", "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without EnablePprof = %d, want 404", code)
	}
	cfg := testConfig(t, t.TempDir())
	cfg.EnablePprof = true
	on := start(t, cfg)
	if code, body := httpDo(t, on, "GET", "/debug/pprof/", ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d %.200q, want the index of profiles", code, body)
	}
	if code, body := httpDo(t, on, "GET", "/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(body, "goroutine profile: total") {
		t.Errorf("/debug/pprof/goroutine = %d %.200q, want a goroutine profile", code, body)
	}
}

// With AutoCompaction (etcd's --auto-compaction-retention 2s) the member
// compacts its history by itself: old revisions go, the newest stay.
func TestAutoCompaction(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.AutoCompaction = autocompact.Policy{Mode: autocompact.Periodic, Period: 2 * time.Second}
	m := start(t, cfg)
	cli := client(t, m)
	var last int64
	for i := range 5 {
		resp, err := cli.Put(ctx(t), "ac", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = resp.Header.Revision
	}
	// The window reaches past the puts a period after them.
	deadline := time.Now().Add(20 * time.Second)
	for m.Store().CompactRev() < last {
		if time.Now().After(deadline) {
			t.Fatalf("compacted to %d after 20s, want %d or later", m.Store().CompactRev(), last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cli.Get(ctx(t), "ac", clientv3.WithRev(last-1)); err == nil || !strings.Contains(err.Error(), "required revision has been compacted") {
		t.Errorf("get at revision %d after auto compaction: %v, want compacted", last-1, err)
	}
	if resp, err := cli.Get(ctx(t), "ac"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "4" {
		t.Errorf("get after auto compaction = %v, %v; want the newest value", resp, err)
	}
}
