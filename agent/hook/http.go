package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for an HTTP hook's zero fields.
const (
	DefaultHTTPTimeout   = 10 * time.Second
	DefaultHTTPRetryWait = time.Second
)

// bodyLimit is how many bytes of a response body an error keeps.
const bodyLimit = 512

// HTTPRequest describes the request an HTTP hook sends.
type HTTPRequest struct {
	// Method defaults to POST when Body is set, GET otherwise.
	Method string
	// URL is an absolute http or https URL.
	URL string
	// Headers are sent as given (Host sets the request's host).
	Headers map[string]string
	// Body is a template rendered with Env.Render each time the hook runs.
	Body string
	// ExpectStatus lists the accepted response codes; empty means any 2xx.
	ExpectStatus []int
	// Timeout bounds each attempt; zero means DefaultHTTPTimeout.
	Timeout time.Duration
	// Retries is how many more attempts follow a failed one.
	Retries int
	// RetryWait is the pause between attempts; zero means
	// DefaultHTTPRetryWait.
	RetryWait time.Duration
}

// HTTP is a hook that sends one HTTP request, retrying on failure.
type HTTP struct {
	name   string
	req    HTTPRequest
	client *http.Client
}

// NewHTTP validates r and returns a hook that sends it.
func NewHTTP(name string, r HTTPRequest) (Hook, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if r.Method == "" {
		r.Method = http.MethodGet
		if r.Body != "" {
			r.Method = http.MethodPost
		}
	}
	r.Method = strings.ToUpper(r.Method)
	if !validToken(r.Method) {
		return nil, fmt.Errorf("hook %q: http method %q is not valid (use GET, POST, PUT, PATCH or DELETE)", name, r.Method)
	}
	if r.URL == "" {
		return nil, fmt.Errorf(`hook %q: http has no url (set url = "http://127.0.0.1:8080/actuator/loggers/root")`, name)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("hook %q: http url %q: %w (write a full URL like http://host:port/path)", name, r.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("hook %q: http url %q is not an absolute http or https URL (write http://host:port/path)", name, r.URL)
	}
	headers := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if !validToken(k) {
			return nil, fmt.Errorf("hook %q: http header name %q is not valid (use letters, digits and '-')", name, k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("hook %q: http header %s holds a line break or NUL (keep the value on one line)", name, k)
		}
		headers[k] = v
	}
	r.Headers = headers
	for _, c := range r.ExpectStatus {
		if c < 100 || c > 599 {
			return nil, fmt.Errorf("hook %q: http expect_status %d is not an HTTP status (use codes from 100 to 599)", name, c)
		}
	}
	r.ExpectStatus = slices.Clone(r.ExpectStatus)
	switch {
	case r.Timeout < 0:
		return nil, fmt.Errorf("hook %q: http timeout %s is negative (use a positive duration like \"10s\")", name, r.Timeout)
	case r.Retries < 0:
		return nil, fmt.Errorf("hook %q: http retries %d is negative (use 0 for a single attempt)", name, r.Retries)
	case r.RetryWait < 0:
		return nil, fmt.Errorf("hook %q: http retry_wait %s is negative (use a positive duration like \"1s\")", name, r.RetryWait)
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultHTTPTimeout
	}
	if r.RetryWait == 0 {
		r.RetryWait = DefaultHTTPRetryWait
	}
	return &HTTP{name: name, req: r, client: &http.Client{}}, nil
}

// Name returns the hook's name.
func (h *HTTP) Name() string { return h.name }

// Run renders the body, then sends the request until a response has an
// expected status or 1+Retries attempts have failed.
func (h *HTTP) Run(ctx context.Context, env Env) error {
	body := h.req.Body
	if body != "" && env.Render != nil {
		b, err := env.Render(body)
		if err != nil {
			return fmt.Errorf("hook %q: render http body: %w", h.name, err)
		}
		body = b
	}
	attempts := 1 + h.req.Retries
	var last error
	for i := range attempts {
		if i > 0 {
			env.logger().Warn("hook http attempt failed, retrying", "hook", h.name, "attempt", i, "wait", h.req.RetryWait, "err", last)
			t := time.NewTimer(h.req.RetryWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return h.stopped(ctx, i, last)
			case <-t.C:
			}
		}
		status, err := h.send(ctx, body)
		if err == nil {
			env.logger().Info("hook sent http request", "hook", h.name, "method", h.req.Method, "url", h.req.URL, "status", status)
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return h.stopped(ctx, i+1, last)
		}
	}
	if attempts > 1 {
		return fmt.Errorf("hook %q: %s %s: %w (after %d attempts)", h.name, h.req.Method, h.req.URL, last, attempts)
	}
	return fmt.Errorf("hook %q: %s %s: %w", h.name, h.req.Method, h.req.URL, last)
}

// stopped is Run's error when ctx ends after made attempts.
func (h *HTTP) stopped(ctx context.Context, made int, last error) error {
	return fmt.Errorf("hook %q: %s %s: stopped after %d of %d attempts: %w (last: %v)", h.name, h.req.Method, h.req.URL, made, 1+h.req.Retries, context.Cause(ctx), last)
}

// send makes one attempt and returns the response status.
func (h *HTTP) send(ctx context.Context, body string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.req.Timeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, h.req.Method, h.req.URL, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	for k, v := range h.req.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the method and URL are already in the message
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, fmt.Errorf("no response within %s (raise timeout or check the endpoint)", h.req.Timeout)
		}
		return 0, err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, bodyLimit+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if h.expected(resp.StatusCode) {
		return resp.StatusCode, nil
	}
	text := string(bytes.TrimSpace(snippet))
	if len(snippet) > bodyLimit {
		text = string(bytes.TrimSpace(snippet[:bodyLimit])) + "…"
	}
	msg := fmt.Sprintf("status %s (want %s)", resp.Status, h.want())
	if text != "" {
		msg += ": " + text
	}
	return resp.StatusCode, errors.New(msg)
}

func (h *HTTP) expected(code int) bool {
	if len(h.req.ExpectStatus) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(h.req.ExpectStatus, code)
}

func (h *HTTP) want() string {
	if len(h.req.ExpectStatus) == 0 {
		return "2xx"
	}
	parts := make([]string, len(h.req.ExpectStatus))
	for i, c := range h.req.ExpectStatus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, " or ")
}

// validToken reports whether s is an HTTP token (a method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
