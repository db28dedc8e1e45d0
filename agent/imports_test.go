package agent

import (
	"os/exec"
	"strings"
	"testing"
)

// The agent reaches the store only through clientv3: neither it nor
// anything it imports may import tend's store or cluster.
func TestImportsNoStoreOrCluster(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/tendkv/tend/store", "github.com/tendkv/tend/cluster"} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("the agent imports %s; it must use clientv3 only", pkg)
			}
		}
	}
}
