package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// EtcdVersion is the release of the reference etcd and etcdctl; it matches
// the etcd modules in go.mod.
const EtcdVersion = "v3.7.3"

var (
	etcdOnce sync.Once
	etcdDir  string
	etcdErr  error
)

// Etcdutl returns the path of a real etcdutl of EtcdVersion (snapshot
// restore and status for etcd), built with EtcdBinaries' etcd and etcdctl.
func Etcdutl(t testing.TB) string {
	t.Helper()
	EtcdBinaries(t)
	return filepath.Join(etcdDir, "etcdutl")
}

// referenceTools are the programs of the reference build and their main
// packages.
var referenceTools = []struct{ name, pkg string }{
	{"etcd", "go.etcd.io/etcd/server/v3"},
	{"etcdctl", "go.etcd.io/etcd/etcdctl/v3"},
	{"etcdutl", "go.etcd.io/etcd/etcdutl/v3"},
}

// EtcdBinaries returns the paths of a real etcd and etcdctl of EtcdVersion,
// building them (and etcdutl) on first use into $XDG_CACHE_HOME/tend/etcd-<version> (or
// ~/.cache/tend/...; TEND_CACHE overrides) in a throwaway module, exactly as
// bench/build-etcd.sh does. If they cannot be built (no network for the
// module proxy, no go command) the test skips, or fails with TEND_E2E=require.
func EtcdBinaries(t testing.TB) (etcd, etcdctl string) {
	t.Helper()
	etcdOnce.Do(func() { etcdDir, etcdErr = buildEtcd() })
	if etcdErr != nil {
		Missing(t, "needs a reference etcd %s (build it with: bash bench/build-etcd.sh): %v", EtcdVersion, etcdErr)
	}
	return filepath.Join(etcdDir, "etcd"), filepath.Join(etcdDir, "etcdctl")
}

func cacheDir() (string, error) {
	if d := os.Getenv("TEND_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory (set TEND_CACHE): %w", err)
	}
	return filepath.Join(d, "tend"), nil
}

func buildEtcd() (string, error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, "etcd-"+EtcdVersion)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", out, err)
	}
	// Test binaries of several packages may get here at once: one builds,
	// the others wait on the lock and then find the result.
	lock, err := os.OpenFile(filepath.Join(out, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", out, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", out, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	built := true
	for _, tool := range referenceTools {
		built = built && executable(filepath.Join(out, tool.name))
	}
	if built {
		return out, nil
	}
	work, err := os.MkdirTemp("", "tend-etcd-build-")
	if err != nil {
		return "", fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)
	get := []string{"go", "get"}
	for _, tool := range referenceTools {
		get = append(get, tool.pkg+"@"+EtcdVersion)
	}
	steps := [][]string{{"go", "mod", "init", "tend-reference-etcd"}, get}
	for _, tool := range referenceTools {
		steps = append(steps, []string{"go", "build", "-o", filepath.Join(out, tool.name+".tmp"), tool.pkg})
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v: %w\n%s", s, err, b)
		}
	}
	for _, tool := range referenceTools {
		if err := os.Rename(filepath.Join(out, tool.name+".tmp"), filepath.Join(out, tool.name)); err != nil {
			return "", fmt.Errorf("install %s: %w", tool.name, err)
		}
	}
	return out, nil
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
