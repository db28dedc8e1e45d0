package v3rpc

import (
	"context"
	"errors"
	"io"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/auth"
	"github.com/tendkv/tend/store"
)

// invalidWatchID marks a create that failed (clientv3.InvalidWatchID).
const invalidWatchID = -1

type watchServer struct {
	pb.UnimplementedWatchServer
	b    Backend
	hdr  header
	opts Options
	auth *authn
}

// Watch serves one client stream: a receive goroutine turns create, cancel
// and progress requests into store calls and control responses; this
// goroutine sends control responses and events, holding back a watch's events
// until its created response is out, as etcd's sendLoop does. The receive
// goroutine stops when the stream ends (the handler returning ends it).
func (s *watchServer) Watch(stream pb.Watch_WatchServer) error {
	sw := &streamWatch{
		s:        s,
		stream:   stream,
		ws:       s.b.Store().NewWatchStream(),
		ctrl:     make(chan *pb.WatchResponse, 16),
		fragment: map[int64]bool{},
		closec:   make(chan struct{}),
	}
	defer sw.ws.Close()

	errc := make(chan error, 1)
	go func() { errc <- sw.recvLoop() }()
	err := sw.sendLoop(errc)
	close(sw.closec)
	// The receive goroutine ends once the handler returns and gRPC cancels
	// the stream; do not wait for it here, Recv cannot be interrupted.
	return err
}

type streamWatch struct {
	s      *watchServer
	stream pb.Watch_WatchServer
	ws     *store.WatchStream
	ctrl   chan *pb.WatchResponse
	closec chan struct{}

	mu       sync.Mutex
	fragment map[int64]bool
}

func (sw *streamWatch) recvLoop() error {
	for {
		req, err := sw.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var resp *pb.WatchResponse
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest == nil {
				continue
			}
			resp = sw.create(u.CreateRequest)
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest == nil {
				continue
			}
			id := u.CancelRequest.WatchId
			if err := sw.ws.Cancel(id); err != nil {
				continue // etcd answers nothing for an unknown watch
			}
			sw.mu.Lock()
			delete(sw.fragment, id)
			sw.mu.Unlock()
			resp = &pb.WatchResponse{Header: sw.s.hdr.new(sw.s.b.Store().Rev()), WatchId: id, Canceled: true}
		case *pb.WatchRequest_ProgressRequest:
			if u.ProgressRequest != nil {
				sw.ws.RequestProgress()
			}
			continue
		default:
			continue
		}
		select {
		case sw.ctrl <- resp:
		case <-sw.closec:
			return nil
		}
	}
}

// create starts one watch and returns its created response.
func (sw *streamWatch) create(c *pb.WatchCreateRequest) *pb.WatchResponse {
	if len(c.Key) == 0 {
		c.Key = []byte{0}
	}
	if c.StartRevision < 0 {
		return &pb.WatchResponse{
			Header: sw.s.hdr.new(sw.s.b.Store().Rev()), WatchId: invalidWatchID,
			Created: true, Canceled: true, CancelReason: rpctypes.ErrCompacted.Error(),
		}
	}
	if reason := sw.refusal(c); reason != "" {
		return &pb.WatchResponse{
			Header: sw.s.hdr.new(sw.s.b.Store().Rev()), WatchId: invalidWatchID,
			Created: true, Canceled: true, CancelReason: reason,
		}
	}
	end := c.RangeEnd
	if len(end) == 0 {
		end = nil
	}
	wr := store.WatchRequest{
		Key: c.Key, End: end, StartRev: c.StartRevision,
		PrevKV: c.PrevKv, ProgressNotify: c.ProgressNotify,
	}
	for _, f := range c.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			wr.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			wr.NoDelete = true
		}
	}
	id := c.WatchId
	if id == 0 {
		id = store.AutoWatchID
	}
	// Hold the lock across Watch so the send loop cannot see this watch's
	// first events before its fragment setting.
	sw.mu.Lock()
	id, err := sw.ws.Watch(id, wr)
	if err == nil && c.Fragment {
		sw.fragment[id] = true
	}
	sw.mu.Unlock()
	resp := &pb.WatchResponse{Header: sw.s.hdr.new(sw.s.b.Store().Rev()), WatchId: id, Created: true}
	if err != nil {
		resp.WatchId = invalidWatchID
		resp.Canceled = true
		resp.CancelReason = err.Error()
	}
	return resp
}

// refusal is why the caller may not watch c's range ("" if it may), in the
// words etcd cancels such a watch with. The caller's token is checked at
// each create, as etcd does.
func (sw *streamWatch) refusal(c *pb.WatchCreateRequest) string {
	ai, err := sw.s.auth.info(sw.stream.Context())
	if err == nil {
		err = sw.s.b.Store().Auth().CheckRange(orEmpty(ai), c.Key, c.RangeEnd)
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, auth.ErrInvalidAuthToken):
		return rpctypes.ErrGRPCInvalidAuthToken.Error()
	case errors.Is(err, store.ErrAuthOldRevision):
		return rpctypes.ErrGRPCAuthOldRevision.Error()
	case errors.Is(err, store.ErrUserEmpty):
		return rpctypes.ErrGRPCUserEmpty.Error()
	}
	return rpctypes.ErrGRPCPermissionDenied.Error()
}

// sendLoop sends until the stream fails, the receive side ends or the
// member stops.
func (sw *streamWatch) sendLoop(recvErr <-chan error) error {
	created := map[int64]bool{}
	pending := map[int64][]*pb.WatchResponse{}
	ctx := sw.stream.Context()
	for {
		select {
		case wr, ok := <-sw.ws.Chan():
			if !ok {
				return nil
			}
			resp := &pb.WatchResponse{
				Header:          sw.s.hdr.new(wr.Revision),
				WatchId:         wr.WatchID,
				Events:          wr.Events,
				CompactRevision: wr.CompactRevision,
				Canceled:        wr.Canceled || wr.CompactRevision != 0,
			}
			if !created[wr.WatchID] {
				pending[wr.WatchID] = append(pending[wr.WatchID], resp)
				continue
			}
			if err := sw.send(resp); err != nil {
				return err
			}
		case c := <-sw.ctrl:
			if err := sw.stream.Send(c); err != nil {
				return err
			}
			if c.Canceled {
				delete(created, c.WatchId)
				continue
			}
			if c.Created {
				created[c.WatchId] = true
				for _, resp := range pending[c.WatchId] {
					if err := sw.send(resp); err != nil {
						return err
					}
				}
				delete(pending, c.WatchId)
			}
		case err := <-recvErr:
			if err == nil {
				// The client closed its send side; keep sending until it
				// goes away, as etcd does.
				recvErr = nil
				continue
			}
			if errors.Is(err, context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return ctx.Err()
		case <-sw.s.b.Done():
			return rpctypes.ErrGRPCStopped
		}
	}
}

// send sends one event response, in fragments if the watch asked for them
// and it is larger than MaxRequestBytes.
func (sw *streamWatch) send(resp *pb.WatchResponse) error {
	sw.mu.Lock()
	frag := sw.fragment[resp.WatchId]
	sw.mu.Unlock()
	limit := int(sw.s.opts.MaxRequestBytes)
	if !frag || len(resp.Events) < 2 || proto.Size(resp) < limit {
		return sw.stream.Send(resp)
	}
	rest := resp.Events
	for len(rest) > 0 {
		cur := &pb.WatchResponse{
			Header: resp.Header, WatchId: resp.WatchId, Created: resp.Created,
			Canceled: resp.Canceled, CompactRevision: resp.CompactRevision,
			CancelReason: resp.CancelReason, Fragment: true,
		}
		n := 0
		for n < len(rest) {
			cur.Events = append(cur.Events, rest[n])
			if len(cur.Events) > 1 && proto.Size(cur) >= limit {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			n++
		}
		rest = rest[n:]
		cur.Fragment = len(rest) > 0
		if err := sw.stream.Send(cur); err != nil {
			return err
		}
	}
	return nil
}
