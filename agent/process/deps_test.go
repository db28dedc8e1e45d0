package process_test

import (
	"strings"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// TestImports keeps process a leaf: the standard library and x/sys only,
// so the agent's hooks and any other caller can use it without cycles.
func TestImports(t *testing.T) {
	testenv.CheckImports(t, ".", func(path string) bool {
		return !strings.Contains(path, ".") || path == "golang.org/x/sys/unix"
	})
}
