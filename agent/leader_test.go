package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/clustertest"
	"github.com/tendkv/tend/cluster/transport"
)

// TestAgentLeavesCutOffMember: an agent given every member's endpoint keeps
// rendering whichever member is cut off from the others — including the
// one its watch stream happens to use: a cut-off member ends the agent's
// watches (they require a leader), and the agent resumes them through a
// member that has one.
func TestAgentLeavesCutOffMember(t *testing.T) {
	faults := transport.NewFaults()
	ms := clustertest.StartN(t, 3, func(cfg *cluster.Config) {
		cfg.HeartbeatInterval, cfg.ElectionTimeout = 20*time.Millisecond, 200*time.Millisecond
		cfg.Faults = faults
	})
	var eps, ids []string
	var idn []uint64
	for _, m := range ms {
		eps = append(eps, m.ClientURLs()[0])
		idn = append(idn, m.MemberID())
		ids = append(ids, fmt.Sprintf("%x", m.MemberID()))
	}
	h := startAgent(t, strings.Join(eps, `", "`), eps[0], `
template "app" {
  contents    = "{{ key \"/k\" }}"
  destination = "out"
}
`, nil)
	h.put("/k", "v0")
	h.waitFile("out", "v0")
	for i := range ms {
		faults.Isolate(idn[i], idn)
		writer := newClient(t, eps[(i+1)%3])
		want := fmt.Sprintf("while m%d is cut off", i+1)
		waitFor(t, "a write through the majority", 20*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := writer.Put(ctx, "/k", want)
			return err == nil
		})
		waitFor(t, fmt.Sprintf("out = %q (member %s cut off)", want, ids[i]), 20*time.Second, func() bool {
			b, err := os.ReadFile(h.path("out"))
			return err == nil && string(b) == want
		})
		faults.Heal()
	}
}
