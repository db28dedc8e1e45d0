package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/pkg/v3/idutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/soheilhy/cmux"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/cluster/v3rpc"
	"github.com/tendkv/tend/store"
)

// Member is one running member of a tend cluster.
type Member struct {
	cfg Config
	log *slog.Logger

	id, cid uint64

	membersMu      sync.Mutex
	members        []memberInfo    // guarded by membersMu
	removed        map[uint64]bool // guarded by membersMu: IDs removed for good
	selfClientURLs []string        // set before the loops start

	store       *store.Store
	node        raft.Node
	raftStorage *raft.MemoryStorage
	wal         *wal.WAL
	snapshotter *snap.Snapshotter
	transport   *transport.Transport

	tls              *memberTLS // certificates of the https:// URLs
	metrics          *metrics
	metricsSrv       *http.Server // serves metricsListeners
	metricsListeners []net.Listener
	grpc             *grpc.Server
	http             *httpStack
	listeners        []net.Listener
	clientURLs       []string
	peerListeners    []net.Listener

	reqIDs *idutil.Generator
	wait   *waitRegistry

	term      atomic.Uint64
	lead      atomic.Uint64
	committed atomic.Uint64

	appliedMu sync.Mutex
	applied   uint64        // guarded by appliedMu
	appliedc  chan struct{} // closed and replaced when applied grows

	readMu     sync.Mutex
	readNext   *readNotifier // guarded by readMu: the round the next reader joins
	readc      chan struct{}
	readStates chan raft.ReadState
	readRounds atomic.Uint64 // ReadIndex rounds run, for tests and metrics

	snapshotsInstalled atomic.Uint64 // snapshots received from a leader and applied
	// heartbeats finds late heartbeats (raft loop only); lateHeartbeats
	// counts them (etcd_server_heartbeat_send_failures_total).
	heartbeats     *heartbeatWatch
	lateHeartbeats atomic.Uint64

	tickc chan time.Duration // new tick intervals for the Ready loop

	readyOnce sync.Once
	readyc    chan struct{}

	// Owned by the Ready loop.
	confState   *raftpb.ConfState
	confIndex   uint64 // the log index confState and the member list are as of, at least
	snapIndex   uint64
	removedSelf bool // this member applied its own removal

	ctx    context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup
	errMu  sync.Mutex
	err    error // guarded by errMu: why the member stopped
	done   chan struct{}
}

// requestTimeout bounds how long a proposal may wait to be applied.
func (m *Member) requestTimeout() time.Duration {
	return 5*time.Second + 2*m.cfg.ElectionTimeout
}

// maxApplyLag is how far applying may fall behind committing before new
// proposals are refused with "too many requests", as etcd does.
const maxApplyLag = 5000

// errEmptyWAL marks a WAL that holds no Raft state at all.
var errEmptyWAL = errors.New("WAL holds no entries")

// keepWALFiles is how many WAL files stay on disk at least.
const keepWALFiles = 5

// walMetadata is what the WAL records once, at creation: who this member is.
type walMetadata struct {
	MemberID  uint64       `json:"member-id"`
	ClusterID uint64       `json:"cluster-id"`
	Members   []memberInfo `json:"members"`
}

// StartMember opens (or creates) the member's data directory, replays its
// log, starts Raft, and serves the etcd v3 API on the client URLs. It
// returns once serving; ReadyNotify tells when the member has a leader and
// has caught up with its log. ctx bounds the start only; Close stops the
// member.
func StartMember(ctx context.Context, cfg Config) (m *Member, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tokens, passwords, err := authSetup(cfg)
	if err != nil {
		return nil, err
	}
	mtls, err := newMemberTLS(cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start member %s: %w", cfg.Name, err)
	}
	m = &Member{
		cfg:        cfg,
		log:        cfg.Logger.With("member", cfg.Name),
		heartbeats: newHeartbeatWatch(cfg.HeartbeatInterval),
		wait:       newWaitRegistry(),
		appliedc:   make(chan struct{}),
		readNext:   newReadNotifier(),
		readc:      make(chan struct{}, 1),
		readStates: make(chan raft.ReadState, 16),
		readyc:     make(chan struct{}),
		done:       make(chan struct{}),
		removed:    map[uint64]bool{},
		tickc:      make(chan time.Duration),
		tls:        mtls,
	}
	m.metrics = newMetrics(m, cfg.Metrics)
	// closers undo what StartMember opened when a later step fails.
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	// Listen first: a busy port must fail before any file is created.
	listen := func(flag, u string) (net.Listener, *url.URL, error) {
		pu, _ := url.Parse(u) // validated
		l, err := net.Listen("tcp", pu.Host)
		if err != nil {
			return nil, nil, fmt.Errorf("listen on --%s %s: %w", flag, u, err)
		}
		closers = append(closers, l.Close)
		return l, pu, nil
	}
	for _, u := range cfg.ListenClientURLs {
		l, pu, err := listen("listen-client-urls", u)
		if err != nil {
			return nil, err
		}
		m.listeners = append(m.listeners, l)
		m.clientURLs = append(m.clientURLs, pu.Scheme+"://"+l.Addr().String())
	}
	for _, u := range cfg.ListenPeerURLs {
		l, _, err := listen("listen-peer-urls", u)
		if err != nil {
			return nil, err
		}
		m.peerListeners = append(m.peerListeners, m.tls.peerListener(l, u, m.log))
	}
	for _, u := range cfg.ListenMetricsURLs {
		l, pu, err := listen("listen-metrics-urls", u)
		if err != nil {
			return nil, err
		}
		if pu.Scheme == "https" {
			l = tls.NewListener(l, m.tls.client.server)
		}
		m.metricsListeners = append(m.metricsListeners, l)
	}

	memberDir := filepath.Join(cfg.DataDir, "member")
	walDir := filepath.Join(memberDir, "wal")
	snapDir := filepath.Join(memberDir, "snap")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", snapDir, err)
	}
	m.store, err = store.Open(filepath.Join(snapDir, "db"), store.Options{
		MinLeaseTTL:   minLeaseTTL(cfg),
		Logger:        cfg.Logger,
		ObserveCommit: func(d time.Duration) { m.metrics.backendCommit.Observe(d.Seconds()) },
	})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", snapDir, err)
	}
	closers = append(closers, m.store.Close)
	m.snapshotter = snap.New(zap.NewNop(), snapDir)
	m.raftStorage = raft.NewMemoryStorage()

	rcfg := raftConfig(cfg, m.raftStorage, raftLogger{m.log})
	var peers []raft.Peer
	restarted := false
	if wal.Exist(walDir) {
		switch err := m.restart(walDir, rcfg); {
		case errors.Is(err, errEmptyWAL):
			// A first start stopped before Raft saved anything: the
			// WAL holds only its metadata. Start over.
			m.wal.Close()
			m.log.Warn("bootstrapping again over an empty WAL", "wal-dir", walDir)
			if err := os.RemoveAll(walDir); err != nil {
				return nil, fmt.Errorf("remove empty WAL %s: %w", walDir, err)
			}
		case err != nil:
			return nil, err
		default:
			restarted = true
		}
	}
	if !restarted {
		if peers, err = m.bootstrap(ctx, walDir); err != nil {
			return nil, err
		}
	}
	closers = append(closers, m.wal.Close)
	rcfg.ID = m.id
	m.reqIDs = idutil.NewGenerator(uint16(m.id), time.Now())

	m.setSelfClientURLs()
	tr := m.newTransport()
	m.transport = tr
	closers = append(closers, tr.Close)

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start member %s: %w", cfg.Name, err)
	}
	if len(peers) > 0 {
		m.node = raft.StartNode(rcfg, peers)
	} else {
		m.node = raft.RestartNode(rcfg)
	}
	m.syncPeers()
	m.grpc = v3rpc.NewServer(m, v3rpc.Options{
		MaxRequestBytes:   cfg.MaxRequestBytes,
		MaxTxnOps:         cfg.MaxTxnOps,
		QuotaBackendBytes: cfg.QuotaBackendBytes,
		Logger:            m.log,
		Tokens:            tokens,
		Passwords:         passwords,
		ElectionTimeout:   cfg.ElectionTimeout,
		Unary:             m.metrics.grpc.UnaryServerInterceptor(),
		Stream:            m.metrics.grpc.StreamServerInterceptor(),
	}, grpc.WaitForHandlers(true), grpc.Creds(handshaken{}), grpc.StatsHandler(grpcBytes{m.metrics}))
	m.metrics.grpc.InitializeMetrics(m.grpc)

	m.ctx, m.cancel = context.WithCancel(context.Background())
	if m.http, err = m.newHTTPStack(m.ctx); err != nil {
		m.cancel()
		m.node.Stop()
		return nil, err
	}
	m.start()
	m.log.Info("member started", "member-id", fmt.Sprintf("%x", m.id), "cluster-id", fmt.Sprintf("%x", m.cid),
		"data-dir", cfg.DataDir, "client-urls", m.clientURLs)
	return m, nil
}

// raftConfig is the Raft configuration of a member: one tick per heartbeat
// interval, an election timeout of that many ticks, and, as etcd runs,
// check-quorum (a leader that hears from no quorum steps down) and pre-vote
// (unless turned off).
func raftConfig(cfg Config, storage raft.Storage, lg raft.Logger) *raft.Config {
	return &raft.Config{
		ElectionTick:    int(cfg.ElectionTimeout / cfg.HeartbeatInterval),
		HeartbeatTick:   1,
		Storage:         storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 512,
		CheckQuorum:     true,
		PreVote:         !cfg.DisablePreVote,
		Logger:          lg,
		// Committed entries carry at most this much per Ready, so one
		// Ready never holds the whole log on replay.
		MaxCommittedSizePerReady: 64 << 20,
	}
}

// minLeaseTTL is etcd's: a lease must outlive a leader election
// (1.5 election timeouts), in whole seconds.
func minLeaseTTL(cfg Config) int64 {
	ttl := (3*cfg.ElectionTimeout/2 + time.Second - 1) / time.Second
	return int64(max(ttl, 1))
}

// setSelfClientURLs records this member's client URLs: the advertised ones,
// or the bound addresses when those were left to their defaults.
func (m *Member) setSelfClientURLs() {
	urls := m.cfg.AdvertiseClientURLs
	if slices.Equal(urls, m.cfg.ListenClientURLs) {
		urls = m.clientURLs
	}
	m.selfClientURLs = urls
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	for i := range m.members {
		if m.members[i].ID == m.id {
			m.members[i].ClientURLs = urls
		}
	}
}

// bootstrap creates the WAL of a new member and returns the peers Raft
// starts with: the initial cluster's members for a new cluster, none for a
// member joining an existing one (the leader sends it the log).
func (m *Member) bootstrap(ctx context.Context, walDir string) ([]raft.Peer, error) {
	cfg := &m.cfg
	if idx := m.store.AppliedIndex(); idx != 0 {
		return nil, fmt.Errorf("data dir %s: the store has applied index %d but there is no WAL at %s: restore the WAL or start with an empty data dir", cfg.DataDir, idx, walDir)
	}
	if cfg.InitialClusterState == ClusterStateExisting {
		ci, self, err := m.join(ctx)
		if err != nil {
			return nil, err
		}
		m.id, m.cid, m.members = self, ci.ClusterID, ci.Members
		meta, err := json.Marshal(walMetadata{MemberID: m.id, ClusterID: m.cid, Members: m.members})
		if err != nil {
			return nil, fmt.Errorf("encode WAL metadata: %w", err)
		}
		if m.wal, err = wal.Create(zap.NewNop(), walDir, meta); err != nil {
			return nil, fmt.Errorf("create WAL %s: %w", walDir, err)
		}
		m.confState = &raftpb.ConfState{}
		m.log.Info("joining cluster", "cluster-id", fmt.Sprintf("%x", m.cid), "member-id", fmt.Sprintf("%x", m.id))
		return nil, nil
	}
	members, self, err := initialMembers(cfg)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(members))
	for i, mi := range members {
		ids[i] = mi.ID
	}
	m.id, m.cid, m.members = self, clusterID(ids), members
	peers := make([]raft.Peer, len(members))
	for i, mi := range members {
		ctx, err := json.Marshal(mi)
		if err != nil {
			return nil, fmt.Errorf("encode member %s: %w", mi.Name, err)
		}
		peers[i] = raft.Peer{ID: mi.ID, Context: ctx}
	}
	meta, err := json.Marshal(walMetadata{MemberID: m.id, ClusterID: m.cid, Members: members})
	if err != nil {
		return nil, fmt.Errorf("encode WAL metadata: %w", err)
	}
	if m.wal, err = wal.Create(zap.NewNop(), walDir, meta); err != nil {
		return nil, fmt.Errorf("create WAL %s: %w", walDir, err)
	}
	m.confState = &raftpb.ConfState{}
	return peers, nil
}

// restart loads the newest snapshot the WAL knows, opens the WAL after it
// and replays the rest into Raft's storage. Committed entries after the
// snapshot come back through the Ready loop; the store skips those it
// already holds.
func (m *Member) restart(walDir string, rcfg *raft.Config) error {
	lg := zap.NewNop()
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return fmt.Errorf("list snapshots in WAL %s: %w", walDir, err)
	}
	snapshot, err := m.snapshotter.LoadNewestAvailable(walSnaps)
	if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
		return fmt.Errorf("load snapshot: %w", err)
	}
	walSnap := &walpb.Snapshot{}
	if snapshot != nil {
		walSnap = newWALSnapshot(snapshot.GetMetadata())
	}
	meta, hs, ents, err := m.openWAL(walDir, walSnap)
	if err != nil {
		return err
	}
	if snapshot == nil && len(ents) == 0 && raft.IsEmptyHardState(hs) {
		return errEmptyWAL
	}
	var md walMetadata
	if err := json.Unmarshal(meta, &md); err != nil {
		m.wal.Close()
		return fmt.Errorf("decode WAL metadata in %s: %w", walDir, err)
	}
	m.id, m.cid, m.members = md.MemberID, md.ClusterID, md.Members
	m.confState = &raftpb.ConfState{}
	if snapshot != nil {
		if idx := m.store.AppliedIndex(); idx < snapshot.GetMetadata().GetIndex() {
			m.wal.Close()
			return fmt.Errorf("data dir %s: store applied index %d is behind snapshot index %d: the store file lost writes; restore it from a backup", m.cfg.DataDir, idx, snapshot.GetMetadata().GetIndex())
		}
		if err := m.raftStorage.ApplySnapshot(snapshot); err != nil {
			m.wal.Close()
			return fmt.Errorf("load snapshot %d into raft: %w", snapshot.GetMetadata().GetIndex(), err)
		}
		m.confState = proto.Clone(snapshot.GetMetadata().GetConfState()).(*raftpb.ConfState)
		if data := snapshot.GetData(); len(data) > 0 {
			if err := m.loadMembership(data); err != nil {
				m.wal.Close()
				return fmt.Errorf("decode members in snapshot %d: %w", snapshot.GetMetadata().GetIndex(), err)
			}
		}
		m.snapIndex = snapshot.GetMetadata().GetIndex()
		rcfg.Applied = m.snapIndex
	}
	if hs != nil {
		if err := m.raftStorage.SetHardState(hs); err != nil {
			m.wal.Close()
			return fmt.Errorf("load hard state into raft: %w", err)
		}
	}
	if err := m.raftStorage.Append(ents); err != nil {
		m.wal.Close()
		return fmt.Errorf("load %d WAL entries into raft: %w", len(ents), err)
	}
	m.setApplied(m.snapIndex)
	return nil
}

// openWAL opens the WAL at snapshot s and reads it, repairing a torn last
// record once (a crash in the middle of a write), as etcd does.
func (m *Member) openWAL(walDir string, s *walpb.Snapshot) (meta []byte, hs *raftpb.HardState, ents []*raftpb.Entry, err error) {
	lg := zap.NewNop()
	for repaired := false; ; repaired = true {
		if m.wal, err = wal.Open(lg, walDir, s); err != nil {
			return nil, nil, nil, fmt.Errorf("open WAL %s: %w", walDir, err)
		}
		meta, hs, ents, err = m.wal.ReadAll()
		if err == nil {
			return meta, hs, ents, nil
		}
		m.wal.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, nil, fmt.Errorf("read WAL %s: %w", walDir, err)
		}
		if !wal.Repair(lg, walDir) {
			return nil, nil, nil, fmt.Errorf("repair WAL %s: %w", walDir, err)
		}
		m.log.Warn("repaired torn WAL tail", "wal-dir", walDir)
	}
}

// ClientURLs are the addresses the member serves the etcd API on, as bound
// (a port 0 in --listen-client-urls shows the real port).
func (m *Member) ClientURLs() []string { return append([]string(nil), m.clientURLs...) }

// ReadyNotify is closed once the member has a leader and has applied the
// log it started with.
func (m *Member) ReadyNotify() <-chan struct{} { return m.readyc }

// Done is closed when the member has stopped, after Close or a fatal error.
func (m *Member) Done() <-chan struct{} { return m.done }

// Err is the fatal error that stopped the member; nil while it runs or
// after a clean Close.
func (m *Member) Err() error {
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return m.err
}

// Close stops the member and waits until it has released its files. It
// returns the fatal error that stopped it earlier, if any.
func (m *Member) Close() error {
	m.stop(nil)
	<-m.done
	return m.Err()
}

// stop records why the member stops (nil: Close) and starts the shutdown.
func (m *Member) stop(err error) {
	m.errMu.Lock()
	if err != nil && m.err == nil && m.ctx.Err() == nil {
		m.err = err
		m.log.Error("member stopping", "err", err)
	}
	m.errMu.Unlock()
	m.cancel()
}

// start runs the member's goroutines. Each stops when m.ctx is cancelled;
// the shutdown goroutine then stops gRPC (which waits for handlers) and
// HTTP, closes the listeners, waits for the servers and loops, and releases
// Raft, the transport, the WAL and the store in that order.
func (m *Member) start() {
	m.loops.Add(5)
	go func() { defer m.loops.Done(); m.runRaft() }()
	go func() {
		defer m.loops.Done()
		select {
		case <-m.readyc:
			m.publish()
		case <-m.ctx.Done():
		}
	}()
	go func() { defer m.loops.Done(); m.runReads() }()
	go func() { defer m.loops.Done(); m.runLeaseExpiry() }()
	m.loops.Add(1)
	go func() { defer m.loops.Done(); m.runAutoCompaction() }()
	// WAL files the last snapshot released (unlocked) are removed, keeping
	// the newest keepWALFiles; the purger stops with m.ctx.
	walDir := filepath.Join(m.cfg.DataDir, "member", "wal")
	purged, purgeErr := fileutil.PurgeFileWithDoneNotify(zap.NewNop(), walDir, "wal", keepWALFiles, 30*time.Second, m.ctx.Done())
	go func() {
		defer m.loops.Done()
		select {
		case err := <-purgeErr:
			m.stop(fmt.Errorf("purge WAL files in %s: %w", walDir, err))
		case <-purged:
		}
	}()
	var serving sync.WaitGroup
	run := func(serve func() error) {
		serving.Add(1)
		go func() {
			defer serving.Done()
			if err := serve(); m.servingErr(err) {
				m.stop(fmt.Errorf("serve clients: %w", err))
			}
		}()
	}
	var muxes []cmux.CMux
	for _, l := range m.listeners {
		muxes = append(muxes, m.serveListener(l, m.http, run))
	}
	for _, l := range m.peerListeners {
		run(func() error { return m.transport.Serve(l) })
	}
	m.metricsSrv = m.newMetricsServer()
	for _, l := range m.metricsListeners {
		run(func() error { return m.metricsSrv.Serve(l) })
	}
	go func() {
		<-m.ctx.Done()
		m.grpc.Stop() // waits for gRPC handlers
		m.http.srv.Close()
		m.http.conn.Close()
		m.metricsSrv.Close()
		for i, l := range m.listeners {
			l.Close()
			muxes[i].Close()
		}
		for _, l := range m.peerListeners {
			l.Close()
		}
		serving.Wait()
		m.loops.Wait()
		m.node.Stop()
		var errs []error
		if err := m.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport: %w", err))
		}
		if err := m.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close WAL: %w", err))
		}
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			m.errMu.Lock()
			if m.err == nil {
				m.err = err
			}
			m.errMu.Unlock()
		}
		m.log.Info("member stopped")
		close(m.done)
	}()
}

// The v3rpc.Backend methods.

func (m *Member) ClusterID() uint64      { return m.cid }
func (m *Member) MemberID() uint64       { return m.id }
func (m *Member) Term() uint64           { return m.term.Load() }
func (m *Member) Leader() uint64         { return m.lead.Load() }
func (m *Member) CommittedIndex() uint64 { return m.committed.Load() }
func (m *Member) Store() *store.Store    { return m.store }

// AppliedIndex is the index of the last log entry applied.
func (m *Member) AppliedIndex() uint64 {
	m.appliedMu.Lock()
	defer m.appliedMu.Unlock()
	return m.applied
}

// Members lists the cluster's members.
func (m *Member) Members() []*pb.Member {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	out := make([]*pb.Member, len(m.members))
	for i, mi := range m.members {
		out[i] = mi.pb()
	}
	return out
}

// NewLeaseID returns a positive ID unique in the cluster: the member's ID
// prefixes it, as etcd's request IDs.
func (m *Member) NewLeaseID() int64 { return int64(m.reqIDs.Next() & (1<<63 - 1)) }

// Propose replicates r and waits for its applied result.
func (m *Member) Propose(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	r.ID = m.reqIDs.Next()
	if r.Header == nil {
		r.Header = &pb.RequestHeader{}
	}
	r.Header.ID = r.ID // keeps the sender the API layer put there
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if len(data) > int(m.cfg.MaxRequestBytes) {
		return nil, v3rpc.ErrRequestTooLarge
	}
	if m.committed.Load() > m.AppliedIndex()+maxApplyLag {
		return nil, v3rpc.ErrTooManyRequests
	}
	resc := m.wait.register(r.ID)
	tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	m.metrics.proposalsPending.Add(1)
	defer m.metrics.proposalsPending.Add(-1)
	if err := m.node.Propose(tctx, data); err != nil {
		m.wait.cancel(r.ID)
		m.metrics.proposalsFailed.Inc()
		return nil, m.contextError(ctx, tctx, err)
	}
	select {
	case res := <-resc:
		return res.Resp, res.Err
	case <-tctx.Done():
		m.wait.cancel(r.ID)
		m.metrics.proposalsFailed.Inc()
		return nil, m.contextError(ctx, tctx, tctx.Err())
	case <-m.ctx.Done():
		m.wait.cancel(r.ID)
		m.metrics.proposalsFailed.Inc()
		return nil, v3rpc.ErrStopped
	}
}

// contextError tells the caller's own cancellation from our timeout and
// from a stopped member.
func (m *Member) contextError(ctx, tctx context.Context, err error) error {
	switch {
	case m.ctx.Err() != nil || errors.Is(err, raft.ErrStopped):
		return v3rpc.ErrStopped
	case ctx.Err() != nil:
		return ctx.Err()
	case tctx.Err() != nil:
		return v3rpc.ErrTimeout
	}
	return err
}

// setApplied advances the applied index and wakes its waiters.
func (m *Member) setApplied(idx uint64) {
	m.appliedMu.Lock()
	defer m.appliedMu.Unlock()
	if idx <= m.applied {
		return
	}
	m.applied = idx
	close(m.appliedc)
	m.appliedc = make(chan struct{})
}

// waitApplied returns once the applied index reaches idx.
func (m *Member) waitApplied(ctx context.Context, idx uint64) error {
	for {
		m.appliedMu.Lock()
		applied, ch := m.applied, m.appliedc
		m.appliedMu.Unlock()
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
