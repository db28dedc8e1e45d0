package v3rpc

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
)

// errLostLeader is why a stream that requires a leader was cancelled.
var errLostLeader = errors.New("the member lost its leader")

// noLeaderChecks is how many election timeouts in a row a member must see
// no leader before it cancels the streams that require one (etcd's
// maxNoLeaderCnt).
const noLeaderChecks = 3

// leaderWatch cancels the streams opened with clientv3's WithRequireLeader
// (watches, keep-alives) once the member has had no leader for a while, so
// their clients move to a member that has one instead of waiting on a cut
// off member for ever, as etcd's monitorLeader does.
type leaderWatch struct {
	b Backend

	mu      sync.Mutex
	streams map[*context.CancelCauseFunc]struct{} // guarded by mu
}

func newLeaderWatch(b Backend) *leaderWatch {
	return &leaderWatch{b: b, streams: map[*context.CancelCauseFunc]struct{}{}}
}

// run checks every interval until the member stops.
func (w *leaderWatch) run(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-t.C:
		case <-w.b.Done():
			return
		}
		if w.b.Leader() != 0 {
			missed = 0
			continue
		}
		if missed++; missed < noLeaderChecks {
			continue
		}
		w.mu.Lock()
		for cancel := range w.streams {
			(*cancel)(errLostLeader)
		}
		clear(w.streams)
		w.mu.Unlock()
	}
}

// stream runs handler on ss with a context the watch may cancel.
func (w *leaderWatch) stream(srv any, ss grpc.ServerStream, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancelCause(ss.Context())
	w.mu.Lock()
	w.streams[&cancel] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.streams, &cancel)
		w.mu.Unlock()
		cancel(nil)
	}()
	err := handler(srv, contextStream{ss, ctx})
	if errors.Is(context.Cause(ctx), errLostLeader) {
		return rpctypes.ErrGRPCNoLeader
	}
	return err
}

// contextStream is a server stream with a context of its own.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s contextStream) Context() context.Context { return s.ctx }
