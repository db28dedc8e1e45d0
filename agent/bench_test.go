package agent

import (
	"context"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkPutToFile measures put acknowledged → file replaced (fsynced,
// renamed, folder fsynced) with wait = 0, and reports the p50 and p99.
func BenchmarkPutToFile(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := be.start(b)
			h := startAgent(b, s.URL(), s.URL(), `
template "lat" {
  contents    = "{{ keyOrDefault \"/lat/v\" \"-1\" }}"
  destination = "lat"
}
`, nil)
			h.waitFile("lat", "-1")
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				want := strconv.Itoa(i)
				if _, err := h.cli.Put(context.Background(), "/lat/v", want); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				deadline := start.Add(10 * time.Second)
				for {
					got, _ := os.ReadFile(h.path("lat"))
					if string(got) == want {
						break
					}
					runtime.Gosched()
					if time.Now().After(deadline) {
						b.Fatalf("file not replaced within 10s")
					}
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			// The agent's own share: watch event received → file committed.
			var own []time.Duration
			for _, line := range strings.Split(h.logs.String(), "\n") {
				if i := strings.Index(line, "since-change="); i >= 0 && strings.Contains(line, "template=lat") {
					if d, err := time.ParseDuration(strings.Fields(line[i+len("since-change="):])[0]); err == nil {
						own = append(own, d)
					}
				}
			}
			if len(own) > 0 {
				sort.Slice(own, func(i, j int) bool { return own[i] < own[j] })
				b.ReportMetric(float64(own[len(own)/2].Microseconds())/1000, "agent-p50-ms")
			}
		})
	}
}
