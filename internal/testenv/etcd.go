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

// EtcdBinaries returns the paths of a real etcd and etcdctl of EtcdVersion,
// building them on first use into $XDG_CACHE_HOME/tend/etcd-<version> (or
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

	if executable(filepath.Join(out, "etcd")) && executable(filepath.Join(out, "etcdctl")) {
		return out, nil
	}
	work, err := os.MkdirTemp("", "tend-etcd-build-")
	if err != nil {
		return "", fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)
	steps := [][]string{
		{"go", "mod", "init", "tend-reference-etcd"},
		{"go", "get", "go.etcd.io/etcd/server/v3@" + EtcdVersion, "go.etcd.io/etcd/etcdctl/v3@" + EtcdVersion},
		{"go", "build", "-o", filepath.Join(out, "etcd.tmp"), "go.etcd.io/etcd/server/v3"},
		{"go", "build", "-o", filepath.Join(out, "etcdctl.tmp"), "go.etcd.io/etcd/etcdctl/v3"},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%v: %w\n%s", s, err, b)
		}
	}
	for _, name := range []string{"etcd", "etcdctl"} {
		if err := os.Rename(filepath.Join(out, name+".tmp"), filepath.Join(out, name)); err != nil {
			return "", fmt.Errorf("install %s: %w", name, err)
		}
	}
	return out, nil
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
