package hook_test

import (
	"strings"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// TestImports keeps hook a leaf: the standard library, x/sys and tend's
// internal/typo only. In particular it must not import agent/process
// (processes are reached through Env.Processes) nor the store or cluster.
func TestImports(t *testing.T) {
	testenv.CheckImports(t, ".", func(path string) bool {
		return !strings.Contains(path, ".") || path == "golang.org/x/sys/unix" || path == "github.com/tendkv/tend/internal/typo"
	})
}
