package cluster

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// memberInfo is one member as the cluster knows it.
type memberInfo struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer-urls"`
	ClientURLs []string `json:"client-urls,omitempty"`
	IsLearner  bool     `json:"is-learner,omitempty"`
}

func (mi memberInfo) pb() *pb.Member {
	return &pb.Member{ID: mi.ID, Name: mi.Name, PeerURLs: mi.PeerURLs, ClientURLs: mi.ClientURLs, IsLearner: mi.IsLearner}
}

// memberID derives a member's ID as etcd does: the first 8 bytes of the
// sha1 of its sorted peer URLs joined, followed by the cluster token.
func memberID(peerURLs []string, token string) uint64 {
	urls := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		urls[i] = normalizeURL(u)
	}
	sort.Strings(urls)
	b := []byte(strings.Join(urls, "") + token)
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// clusterID derives the cluster's ID as etcd does: the first 8 bytes of the
// sha1 of the sorted member IDs, big-endian.
func clusterID(ids []uint64) uint64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	b := make([]byte, 8*len(ids))
	for i, id := range ids {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// normalizeURL writes u the way etcd's types.URLs prints it.
func normalizeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.String()
}

// initialMembers builds the members of a new cluster from --initial-cluster
// and finds this member among them by name.
func initialMembers(cfg *Config) (members []memberInfo, self uint64, err error) {
	byName, err := parseInitialCluster(cfg.InitialCluster)
	if err != nil {
		return nil, 0, err
	}
	urls, ok := byName[cfg.Name]
	if !ok {
		return nil, 0, fmt.Errorf("--initial-cluster %q has no entry for --name %q: add %s=%s", cfg.InitialCluster, cfg.Name, cfg.Name, cfg.InitialAdvertisePeerURLs[0])
	}
	adv := slices.Clone(cfg.InitialAdvertisePeerURLs)
	sort.Strings(adv)
	if !slices.Equal(adv, urls) {
		return nil, 0, fmt.Errorf("--initial-cluster entry for %q (%s) does not match --initial-advertise-peer-urls (%s): make them the same", cfg.Name, strings.Join(urls, ","), strings.Join(adv, ","))
	}
	seen := map[uint64]string{}
	for name, urls := range byName {
		id := memberID(urls, cfg.InitialClusterToken)
		if other, dup := seen[id]; dup {
			return nil, 0, fmt.Errorf("--initial-cluster: members %q and %q have the same peer URLs: give each its own", other, name)
		}
		seen[id] = name
		members = append(members, memberInfo{ID: id, Name: name, PeerURLs: urls})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	return members, memberID(urls, cfg.InitialClusterToken), nil
}
