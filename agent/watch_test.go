package agent

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// watchCounter records every watch a client asks the store for, as it
// goes on the wire: each create request sent on a Watch stream.
type watchCounter struct {
	mu      sync.Mutex
	creates []string // "KEY" for a key, "KEY prefix" for a range
}

func (w *watchCounter) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || method != "/etcdserverpb.Watch/Watch" {
		return cs, err
	}
	return &countedStream{ClientStream: cs, w: w}, nil
}

func (w *watchCounter) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]string(nil), w.creates...)
	sort.Strings(out)
	return out
}

type countedStream struct {
	grpc.ClientStream
	w *watchCounter
}

func (s *countedStream) SendMsg(m any) error {
	if r, ok := m.(*pb.WatchRequest); ok {
		if c := r.GetCreateRequest(); c != nil {
			what := string(c.Key)
			if len(c.RangeEnd) > 0 {
				what += " prefix"
			}
			s.w.mu.Lock()
			s.w.creates = append(s.w.creates, what)
			s.w.mu.Unlock()
		}
	}
	return s.ClientStream.SendMsg(m)
}

// Templates reading overlapping prefixes and keys share one watch: four
// templates, three of them under /ov/, make two watches on the wire —
// /ov/ and the one key elsewhere — and a change under /ov/ reaches all
// three through it.
func TestOverlappingPrefixesShareOneWatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		var wc watchCounter
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{s.URL()},
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithChainStreamInterceptor(wc.intercept)},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		h := startAgentWith(t, s.URL(), s.URL(), `
template "all" {
  contents    = "{{ range kvs \"/ov/\" }}{{ .Rel }}={{ .Value }};{{ end }}"
  destination = "all"
}
template "sub" {
  contents    = "{{ range ls \"/ov/a\" }}{{ .Rel }}={{ .Value }};{{ end }}"
  destination = "sub"
}
template "one" {
  contents    = "{{ keyOrDefault \"/ov/a/x\" \"-\" }}"
  destination = "one"
}
template "other" {
  contents    = "{{ keyOrDefault \"/elsewhere/k\" \"-\" }}"
  destination = "other"
}
`, nil, Options{Client: cli})
		h.waitFile("one", "-")
		h.waitFile("other", "-")
		h.put("/ov/a/x", "1")
		h.waitFile("all", "a/x=1;")
		h.waitFile("sub", "x=1;")
		h.waitFile("one", "1")
		h.put("/ov/b", "2")
		h.waitFile("all", "a/x=1;b=2;")
		h.put("/elsewhere/k", "3")
		h.waitFile("other", "3")
		want := []string{"/elsewhere/k", "/ov/ prefix"}
		if got := wc.list(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("watches created on the wire: %q, want %q (one per merged prefix or key)", got, want)
		}
	})
}
