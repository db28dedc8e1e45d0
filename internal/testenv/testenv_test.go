package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

func TestProgramFindsSh(t *testing.T) {
	if p := Program(t, "sh", "dash"); p == "" {
		t.Fatal("Program returned an empty path for sh")
	}
}

func TestProgramMissingSkips(t *testing.T) {
	t.Setenv(RequireEnv, "")
	ok := t.Run("missing", func(t *testing.T) {
		Program(t, "tend-no-such-program-xyz", "none")
		t.Error("Program returned for a missing program")
	})
	if !ok {
		t.Fatal("a missing program must skip, not fail, without TEND_E2E=require")
	}
}

func TestEtcdBinariesRun(t *testing.T) {
	etcd, etcdctl := EtcdBinaries(t)
	for _, p := range []string{etcd, etcdctl} {
		out, err := exec.Command(p, "version").CombinedOutput()
		if p == etcd {
			out, err = exec.Command(p, "--version").CombinedOutput()
		}
		if err != nil || !strings.Contains(string(out), strings.TrimPrefix(EtcdVersion, "v")) {
			t.Errorf("%s: %v %s", p, err, out)
		}
	}
}
