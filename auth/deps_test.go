package auth_test

import (
	"strings"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// TestImports keeps auth a leaf: the standard library, bcrypt, jwt and
// etcd's authpb. It knows nothing of the store, the cluster or gRPC.
func TestImports(t *testing.T) {
	testenv.CheckImports(t, ".", func(path string) bool {
		return !strings.Contains(path, ".") ||
			path == "golang.org/x/crypto/bcrypt" ||
			path == "github.com/golang-jwt/jwt/v5" ||
			path == "go.etcd.io/etcd/api/v3/authpb"
	})
}
