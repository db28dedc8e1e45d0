package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BenchmarkThreeMemberPut puts 256-byte values from parallel clients spread
// over the members of an in-process three-member cluster, with etcd's
// default timing: go test ./cluster -run '^$' -bench ThreeMemberPut -cpuprofile cpu.out
func BenchmarkThreeMemberPut(b *testing.B) {
	c := newBenchCluster(b)
	var eps []string
	for _, i := range c.running() {
		eps = append(eps, c.member(i).ClientURLs()...)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	val := strings.Repeat("v", 256)
	var n atomic.Int64
	b.SetParallelism(8) // 8 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := fmt.Sprintf("%08d", n.Add(1))
			if _, err := cli.Put(context.Background(), k, val); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// newBenchCluster starts three members with etcd's default timing.
func newBenchCluster(b *testing.B) *testCluster {
	b.Helper()
	return newTestCluster(b, 3, func(cfg *Config) {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
		cfg.ElectionTimeout = DefaultElectionTimeout
	})
}
