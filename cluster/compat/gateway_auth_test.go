package compat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// gwCall posts a JSON body to the JSON gateway of b (token: the
// Authorization header) and returns the status and the answer with what
// legitimately differs between servers cleared.
func gwCall(t *testing.T, b backend, path, body, token string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.cli.Endpoints()[0]+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: POST %s: %v", b.name, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Sprintf("%d %s", resp.StatusCode, raw)
	}
	if h, ok := m["header"].(map[string]any); ok {
		delete(h, "cluster_id")
		delete(h, "member_id")
		delete(h, "raft_term")
	}
	if _, ok := m["token"]; ok {
		m["token"] = "TOKEN"
	}
	out, _ := json.Marshal(m)
	return fmt.Sprintf("%d %s", resp.StatusCode, out)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestAuthJSONGatewayAgainstEtcd: the HTTP/JSON gateway authenticates as
// etcd's: a token from /v3/auth/authenticate goes in the Authorization
// header; no header, or a bad one, gets etcd's errors.
func TestAuthJSONGatewayAgainstEtcd(t *testing.T) {
	t.Parallel()
	backends := []backend{startEtcd(t), startTend(t)}
	tokens := make([]string, len(backends))
	steps := []struct{ path, body, token string }{
		{"/v3/auth/user/add", `{"name":"root","password":"rootpw"}`, ""},
		{"/v3/auth/user/grant", `{"user":"root","role":"root"}`, ""},
		{"/v3/auth/user/add", `{"name":"alice","password":"alicepw"}`, ""},
		{"/v3/kv/put", fmt.Sprintf(`{"key":%q,"value":%q}`, b64("/k"), b64("v")), ""},
		{"/v3/auth/enable", `{}`, ""},
		{"/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64("/k")), ""},
		{"/v3/auth/authenticate", `{"name":"root","password":"wrong"}`, ""},
		{"/v3/auth/authenticate", `{"name":"root","password":"rootpw"}`, ""},
		{"/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64("/k")), "ROOT"},
		{"/v3/kv/range", fmt.Sprintf(`{"key":%q}`, b64("/k")), "made-up.1"},
		{"/v3/auth/user/list", `{}`, "ROOT"},
		{"/v3/auth/status", `{}`, "ROOT"},
	}
	for i, s := range steps {
		var outs []string
		for j, b := range backends {
			tok := s.token
			if tok == "ROOT" {
				tok = tokens[j]
			}
			out := gwCall(t, b, s.path, s.body, tok)
			if s.path == "/v3/auth/authenticate" {
				tokens[j] = realToken(t, b, s.body)
			}
			outs = append(outs, out)
		}
		if outs[0] != outs[1] {
			t.Errorf("step %d: POST %s %s\n  etcd: %s\n  tend: %s", i, s.path, s.body, outs[0], outs[1])
		}
	}
}

// realToken authenticates again to learn a token gwCall hid.
func realToken(t *testing.T, b backend, body string) string {
	t.Helper()
	resp, err := http.Post("http://"+b.cli.Endpoints()[0]+"/v3/auth/authenticate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&m)
	return m.Token
}
