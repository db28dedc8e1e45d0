package hook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/hook"
)

// request is what the test server saw.
type request struct {
	method, path, body, contentType, host string
}

// recorder is an httptest server on 127.0.0.1 that records requests and
// answers each with the next of its responses (the last one repeats).
type recorder struct {
	srv *httptest.Server

	mu        sync.Mutex
	requests  []request
	responses []response
}

type response struct {
	status int
	body   string
	block  bool // wait for the client to give up
}

func newRecorder(t *testing.T, responses ...response) *recorder {
	t.Helper()
	r := &recorder{responses: responses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, request{req.Method, req.URL.Path, string(b), req.Header.Get("Content-Type"), req.Host})
		resp := r.responses[min(len(r.requests), len(r.responses))-1]
		r.mu.Unlock()
		if resp.block {
			<-req.Context().Done()
			return
		}
		w.WriteHeader(resp.status)
		io.WriteString(w, resp.body)
	}))
	t.Cleanup(r.srv.Close)
	if !strings.HasPrefix(r.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server is not on 127.0.0.1: %s", r.srv.URL)
	}
	return r
}

func (r *recorder) seen() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

func TestHTTPSendsRenderedBody(t *testing.T) {
	rec := newRecorder(t, response{status: http.StatusNoContent})
	h, err := hook.NewHTTP("loglevel", hook.HTTPRequest{
		URL:     rec.srv.URL + "/actuator/loggers/root",
		Headers: map[string]string{"Content-Type": "application/json", "Host": "app.internal"},
		Body:    `{"configuredLevel": "{{ key }}"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	render := func(text string) (string, error) {
		return strings.ReplaceAll(text, "{{ key }}", "DEBUG"), nil
	}
	if err := h.Run(context.Background(), hook.Env{Render: render}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := rec.seen()
	want := request{"POST", "/actuator/loggers/root", `{"configuredLevel": "DEBUG"}`, "application/json", "app.internal"}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("server saw %+v, want one %+v", got, want)
	}
}

func TestHTTPRenderError(t *testing.T) {
	rec := newRecorder(t, response{status: 200})
	h, err := hook.NewHTTP("loglevel", hook.HTTPRequest{Method: "put", URL: rec.srv.URL, Body: "{{ oops"})
	if err != nil {
		t.Fatal(err)
	}
	render := func(string) (string, error) { return "", io.ErrUnexpectedEOF }
	err = h.Run(context.Background(), hook.Env{Render: render})
	if err == nil || !strings.Contains(err.Error(), `hook "loglevel": render http body: unexpected EOF`) {
		t.Fatalf("Run: %v", err)
	}
	if n := len(rec.seen()); n != 0 {
		t.Fatalf("a request was sent although the body did not render (%d)", n)
	}
}

func TestHTTPUnexpectedStatusRetriesThenFails(t *testing.T) {
	rec := newRecorder(t, response{status: 500, body: "boom: " + strings.Repeat("x", 2000)})
	h, err := hook.NewHTTP("notify", hook.HTTPRequest{URL: rec.srv.URL + "/reload", Retries: 2, RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	if err == nil {
		t.Fatal("Run succeeded on status 500")
	}
	msg := err.Error()
	for _, want := range []string{`hook "notify": GET ` + rec.srv.URL + `/reload: status 500 Internal Server Error (want 2xx): boom: xxx`, "…", "(after 3 attempts)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg[:min(len(msg), 300)], want)
		}
	}
	if len(msg) > 1000 {
		t.Errorf("error is %d bytes; the response body should be cut", len(msg))
	}
	if n := len(rec.seen()); n != 3 {
		t.Fatalf("server saw %d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestHTTPRetrySucceeds(t *testing.T) {
	rec := newRecorder(t, response{status: 503}, response{status: 503}, response{status: 200})
	h, err := hook.NewHTTP("notify", hook.HTTPRequest{URL: rec.srv.URL, Retries: 5, RetryWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(rec.seen()); n != 3 {
		t.Fatalf("server saw %d requests, want 3 (stop at the first success)", n)
	}
}

func TestHTTPExpectStatus(t *testing.T) {
	rec := newRecorder(t, response{status: 200, body: "ok"})
	h, err := hook.NewHTTP("notify", hook.HTTPRequest{URL: rec.srv.URL, ExpectStatus: []int{202, 204}})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	if err == nil || !strings.HasSuffix(err.Error(), "status 200 OK (want 202 or 204): ok") {
		t.Fatalf("Run: %v", err)
	}
	rec2 := newRecorder(t, response{status: 409})
	h, err = hook.NewHTTP("notify", hook.HTTPRequest{URL: rec2.srv.URL, ExpectStatus: []int{409}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{}); err != nil {
		t.Fatalf("Run with an expected 409: %v", err)
	}
}

func TestHTTPTimeout(t *testing.T) {
	rec := newRecorder(t, response{block: true})
	h, err := hook.NewHTTP("slow", hook.HTTPRequest{URL: rec.srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = h.Run(context.Background(), hook.Env{})
	if err == nil || !strings.Contains(err.Error(), "no response within 100ms (raise timeout") {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("Run took %s with a 100ms timeout", took)
	}
}

func TestHTTPCanceledDuringRetryWait(t *testing.T) {
	rec := newRecorder(t, response{status: 500})
	h, err := hook.NewHTTP("notify", hook.HTTPRequest{URL: rec.srv.URL, Retries: 3, RetryWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the first attempt has been answered.
		deadline := time.Now().Add(5 * time.Second)
		for len(rec.seen()) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	began := time.Now()
	err = h.Run(ctx, hook.Env{})
	// The cancel lands while the answer to the first attempt is on its way
	// or during the hour-long wait after it; either way Run stops at once.
	if err == nil || !strings.Contains(err.Error(), "stopped after 1 of 4 attempts: context canceled (last: ") {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Run took %s after the cancel", took)
	}
	if n := len(rec.seen()); n != 1 {
		t.Fatalf("server saw %d requests, want 1", n)
	}
}

func TestNewHTTPValidates(t *testing.T) {
	cases := []struct {
		req  hook.HTTPRequest
		want string
	}{
		{hook.HTTPRequest{}, `hook "h": http has no url`},
		{hook.HTTPRequest{URL: "127.0.0.1:8080/x"}, `(write a full URL like http://host:port/path)`},
		{hook.HTTPRequest{URL: "ftp://127.0.0.1/x"}, `is not an absolute http or https URL`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/%zz"}, `http url "http://127.0.0.1/%zz"`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", Method: "GE T"}, `http method "GE T" is not valid`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", Headers: map[string]string{"Bad Name": "x"}}, `http header name "Bad Name" is not valid`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", Headers: map[string]string{"X-A": "a\r\nb"}}, `http header X-A holds a line break`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", ExpectStatus: []int{2000}}, `expect_status 2000 is not an HTTP status`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", Retries: -1}, `retries -1 is negative`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", Timeout: -time.Second}, `timeout -1s is negative`},
		{hook.HTTPRequest{URL: "http://127.0.0.1/", RetryWait: -time.Second}, `retry_wait -1s is negative`},
	}
	for _, c := range cases {
		_, err := hook.NewHTTP("h", c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewHTTP(%+v) error = %v; want it to contain %q", c.req, err, c.want)
		}
	}
}
