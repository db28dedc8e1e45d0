package playground

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/transport"
)

// Options configures a Playground. Zero fields take the defaults below.
type Options struct {
	Members int    // 5
	DataDir string // required: each member's data dir goes under it
	// ClientPort is the first member's client port; member i listens on
	// ClientPort+10*(i-1) and its peer port is the one after (0: free
	// ports).
	ClientPort        int
	HeartbeatInterval time.Duration // 100ms, as etcd
	ElectionTimeout   time.Duration // 1s, as etcd
	// DisablePreVote runs the members without Raft's pre-vote, to show
	// what it prevents: a cut-off member's term climbs, and its return
	// forces an election.
	DisablePreVote bool
	Logger         *slog.Logger // the members' log; discarded when nil
}

// Playground is a cluster of real members in this process, drawn by the
// page and driven from it.
type Playground struct {
	opts   Options
	hub    *Hub
	faults *transport.Faults
	obs    chan observed // what members sent, for the sampler
	// rewatch tells the key watcher to start again through another member.
	rewatch chan struct{}

	// opMu serialises the actions that start and stop members, so two
	// clicks never race on one member. Held without mu while a member
	// starts or stops.
	opMu sync.Mutex

	mu     sync.Mutex
	nodes  []*node    // guarded by mu: in ring order
	groups [][]uint64 // guarded by mu: the sides of a partition; nil when healed
	slow   int        // guarded by mu: slow-motion factor, 1 for real time
	next   int        // guarded by mu: number of the next member added

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// node is one member of the playground, running or not.
type node struct {
	name string
	id   uint64
	cfg  cluster.Config // what restarts it: same data dir, same URLs
	cli  *clientv3.Client
	// heardAt is when (Unix ms) it last heard from a leader, or started
	// or granted a vote: when its election timer last started.
	heardAt atomic.Int64

	m      *cluster.Member // guarded by Playground.mu; nil while down
	errMsg string          // guarded by Playground.mu: why it stopped on its own
}

// observed is one message a member sent.
type observed struct {
	from, to uint64
	kind     string
	reject   bool
	entries  int
	term     uint64
}

// Start starts the members, waits until they have a leader, and starts
// drawing them. Close stops everything.
func Start(ctx context.Context, opts Options) (*Playground, error) {
	if opts.Members == 0 {
		opts.Members = 5
	}
	if opts.Members < 1 || opts.Members > 9 {
		return nil, fmt.Errorf("--members %d: give 1 to 9 (3 or 5 show elections best)", opts.Members)
	}
	if opts.DataDir == "" {
		return nil, errors.New("playground: no data dir")
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = cluster.DefaultHeartbeatInterval
	}
	if opts.ElectionTimeout == 0 {
		opts.ElectionTimeout = cluster.DefaultElectionTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Playground{
		opts:    opts,
		hub:     NewHub(),
		faults:  transport.NewFaults(),
		obs:     make(chan observed, 4096),
		rewatch: make(chan struct{}, 1),
		slow:    1,
		next:    opts.Members + 1,
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())

	startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// Free ports are found by listening and letting go, so another program
	// may take one before its member listens: then start again on others.
	for attempt := 1; ; attempt++ {
		err := p.startMembers(startCtx)
		if err == nil {
			break
		}
		p.closeNodes()
		if opts.ClientPort != 0 || attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			p.Close()
			return nil, err
		}
		p.opts.Logger.Warn("a free port was taken before its member listened: starting again on others", "error", err)
		for _, n := range p.nodes {
			if err := os.RemoveAll(n.cfg.DataDir); err != nil {
				p.Close()
				return nil, fmt.Errorf("start again: remove %s: %w", n.cfg.DataDir, err)
			}
		}
		p.nodes = nil
	}
	p.wg.Add(3)
	go func() { defer p.wg.Done(); p.runPoll() }()
	go func() { defer p.wg.Done(); p.runSampler() }()
	w := &keyWatcher{hub: p.hub, client: p.watchClient, restart: p.rewatch}
	go func() { defer p.wg.Done(); w.run(p.ctx) }()
	p.hub.Add(Entry{Kind: KindAction, Text: fmt.Sprintf("started %d members: real Raft, WAL and TCP peer links, in one process", opts.Members)})
	return p, nil
}

// choosePeerURLs is peerURLs; a test makes it choose a port already
// taken.
var choosePeerURLs = peerURLs

// peerURLs returns n peer URLs: the port after each member's client port,
// or ports that were free a moment ago (all held open until every one is
// chosen, so no two are the same).
func peerURLs(base, n int) ([]string, error) {
	var urls []string
	if base != 0 {
		for i := range n {
			urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", base+10*i+1))
		}
		return urls, nil
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		urls = append(urls, "http://"+l.Addr().String())
	}
	return urls, nil
}

func (p *Playground) memberConfig(name, clientURL, peerURL string) cluster.Config {
	return cluster.Config{
		Name:                     name,
		DataDir:                  filepath.Join(p.opts.DataDir, name),
		ListenClientURLs:         []string{clientURL},
		ListenPeerURLs:           []string{peerURL},
		InitialAdvertisePeerURLs: []string{peerURL},
		InitialClusterToken:      "tend-playground",
		HeartbeatInterval:        p.opts.HeartbeatInterval,
		ElectionTimeout:          p.opts.ElectionTimeout,
		DisablePreVote:           p.opts.DisablePreVote,
		Faults:                   p.faults,
		ObserveMessage:           p.observe,
		Logger:                   p.opts.Logger.With("playground-member", name),
	}
}

// startMembers chooses the first members' ports, starts them, and waits
// until each is ready.
func (p *Playground) startMembers(ctx context.Context) error {
	opts := p.opts
	peers, err := choosePeerURLs(opts.ClientPort, opts.Members)
	if err != nil {
		return err
	}
	var initial []string
	for i := range opts.Members {
		clientURL := "http://127.0.0.1:0" // pinned to the bound port once started
		if opts.ClientPort != 0 {
			clientURL = fmt.Sprintf("http://127.0.0.1:%d", opts.ClientPort+10*i)
		}
		name := fmt.Sprintf("m%d", i+1)
		n := &node{name: name, cfg: p.memberConfig(name, clientURL, peers[i])}
		p.nodes = append(p.nodes, n)
		initial = append(initial, name+"="+peers[i])
	}
	for _, n := range p.nodes {
		n.cfg.InitialCluster = strings.Join(initial, ",")
	}
	return p.startAll(ctx)
}

// startAll starts every member and waits until each is ready.
func (p *Playground) startAll(ctx context.Context) error {
	for _, n := range p.nodes {
		m, err := cluster.StartMember(ctx, n.cfg)
		if err != nil {
			return fmt.Errorf("start member %s: %w", n.name, err)
		}
		p.attach(n, m)
	}
	for _, n := range p.nodes {
		select {
		case <-n.m.ReadyNotify():
		case <-n.m.Done():
			return fmt.Errorf("member %s stopped while starting: %w", n.name, n.m.Err())
		case <-ctx.Done():
			return fmt.Errorf("member %s not ready: %w", n.name, ctx.Err())
		}
	}
	return nil
}

// attach records a started member (and, the first time, its client).
func (p *Playground) attach(n *node, m *cluster.Member) {
	var cli *clientv3.Client
	p.mu.Lock()
	first := n.cli == nil
	p.mu.Unlock()
	if first {
		// New only fails on a bad configuration; ours is fixed.
		cli, _ = clientv3.New(clientv3.Config{
			Endpoints:   m.ClientURLs(),
			DialTimeout: 2 * time.Second,
			Logger:      zap.NewNop(),
		})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// A restart listens where the member first did, so clients find it.
	// The sampler reads the ID (nodeByID) under mu.
	n.cfg.ListenClientURLs = m.ClientURLs()
	n.id = m.MemberID()
	if first {
		n.cli = cli
	}
	n.m, n.errMsg = m, ""
}

// Hub returns what the page is fed from.
func (p *Playground) Hub() *Hub { return p.hub }

// Endpoints returns every member's client URL, in ring order.
func (p *Playground) Endpoints() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var eps []string
	for _, n := range p.nodes {
		eps = append(eps, n.cfg.ListenClientURLs[0])
	}
	return eps
}

// Close stops the members and the loops drawing them.
func (p *Playground) Close() error {
	p.cancel()
	p.wg.Wait()
	p.closeNodes()
	return nil
}

// closeNodes stops every member and closes its client.
func (p *Playground) closeNodes() {
	p.mu.Lock()
	nodes := slices.Clone(p.nodes)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.cli != nil {
			n.cli.Close()
			n.cli = nil
		}
		p.mu.Lock()
		m := n.m
		n.m = nil
		p.mu.Unlock()
		if m != nil {
			wg.Add(1)
			go func() { defer wg.Done(); m.Close() }()
		}
	}
	wg.Wait()
}

// observe is every member's ObserveMessage: it must not block.
func (p *Playground) observe(m *raftpb.Message) {
	kind := msgKind(m.GetType())
	if kind == "" {
		return
	}
	o := observed{from: m.GetFrom(), to: m.GetTo(), kind: kind, reject: m.GetReject(),
		entries: len(m.GetEntries()), term: m.GetTerm()}
	select {
	case p.obs <- o:
	default: // the page misses a message; the cluster does not wait
	}
}

// nodeByID returns the node with Raft ID id, and whether it runs.
func (p *Playground) nodeByID(id uint64) (n *node, up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nodes {
		if n.id == id {
			return n, n.m != nil
		}
	}
	return nil, false
}

// find returns the node named name (or with hex ID name).
func (p *Playground) find(name string) (*node, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nodes {
		if n.name == name || hexID(n.id) == name {
			return n, nil
		}
	}
	var names []string
	for _, n := range p.nodes {
		names = append(names, n.name)
	}
	return nil, fmt.Errorf("no member %q (members: %s)", name, strings.Join(names, ", "))
}

// ids returns the IDs of the playground's members.
func (p *Playground) idsLocked() []uint64 {
	var ids []uint64
	for _, n := range p.nodes {
		ids = append(ids, n.id)
	}
	return ids
}

// applyGroupsLocked makes the fault seam cut exactly the links between
// different groups.
func (p *Playground) applyGroupsLocked() {
	p.faults.Heal()
	for i := range p.groups {
		for j := i + 1; j < len(p.groups); j++ {
			p.faults.Partition(p.groups[i], p.groups[j])
		}
	}
	select {
	case p.rewatch <- struct{}{}:
	default:
	}
}

// groupOfLocked returns the index of id's group (-1 when healed).
func (p *Playground) groupOfLocked(id uint64) int {
	for i, g := range p.groups {
		if slices.Contains(g, id) {
			return i
		}
	}
	return -1
}

// largestGroupLocked returns the index of the largest group.
func (p *Playground) largestGroupLocked() int {
	best := 0
	for i, g := range p.groups {
		if len(g) > len(p.groups[best]) {
			best = i
		}
	}
	return best
}

// watchClient returns the client of a running member on the largest side
// of any partition: the key watcher follows the cluster through it.
func (p *Playground) watchClient() *clientv3.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	big := -1
	if p.groups != nil {
		big = p.largestGroupLocked()
	}
	for _, n := range p.nodes {
		if n.m != nil && n.cli != nil && (big < 0 || p.groupOfLocked(n.id) == big) {
			return n.cli
		}
	}
	return nil
}

// sortedGroupsLocked returns the groups as hex IDs, the largest first.
func (p *Playground) sortedGroupsLocked() [][]string {
	if p.groups == nil {
		return nil
	}
	var out [][]string
	for _, g := range p.groups {
		var s []string
		for _, id := range g {
			s = append(s, hexID(id))
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}
