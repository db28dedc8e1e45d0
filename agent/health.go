package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// healthy runs the health gate, if configured: up to Retries probes spaced
// by Interval, all within Deadline.
func (l *loop) healthy(ctx context.Context) error {
	h := l.cfg.Health
	if h == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.Deadline)
	defer cancel()
	var err error
	for try := 1; try <= h.Retries; try++ {
		if err = probe(ctx, h.HTTP, nil, h.Command); err == nil {
			l.log.Info("health check passed", "try", try)
			return nil
		}
		l.log.Warn("health check failed", "try", try, "of", h.Retries, "error", err)
		if try == h.Retries {
			break
		}
		select {
		case <-time.After(h.Interval):
		case <-ctx.Done():
			return fmt.Errorf("health check: deadline %s passed after %d tries: %w", h.Deadline, try, err)
		}
	}
	return fmt.Errorf("health check: %d tries failed: %w", h.Retries, err)
}

// probe is one health check: a GET answering one of expect (any 2xx when
// expect is empty), and/or a command exiting 0; each that is set must pass.
func probe(ctx context.Context, url string, expect []int, command []string) error {
	if url != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
		if len(expect) > 0 {
			ok = slices.Contains(expect, resp.StatusCode)
		}
		if !ok {
			return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	if len(command) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(command, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
