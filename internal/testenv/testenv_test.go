package testenv

import (
	"errors"
	"os"
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

// childEnv tells a test binary started by TestMissingProgram that it is
// that test's child.
const childEnv = "TESTENV_MISSING_PROGRAM_CHILD"

// A missing program skips the test, naming the Debian package to install,
// unless TEND_E2E=require, which fails it with the same message: the test
// binary runs itself with each setting and the test's outcome is read from
// its output and exit status.
func TestMissingProgram(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		Program(t, "tend-no-such-program-xyz", "tend-test-package")
		t.Error("Program returned for a missing program")
		return
	}
	const reason = "needs tend-no-such-program-xyz (Debian package tend-test-package)"
	for _, tc := range []struct {
		e2e      string
		fail     bool
		outcome  string
		required bool // the message says TEND_E2E=require made it fail
	}{
		{"require", true, "--- FAIL: TestMissingProgram", true},
		{"", false, "--- SKIP: TestMissingProgram", false},
		{"1", false, "--- SKIP: TestMissingProgram", false},
	} {
		t.Run("TEND_E2E="+tc.e2e, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestMissingProgram$", "-test.v", "-test.count", "1")
			cmd.Env = append(withoutEnv(os.Environ(), RequireEnv), childEnv+"=1", RequireEnv+"="+tc.e2e)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case tc.fail && !errors.As(err, &exit):
				t.Errorf("the child test passed (%v); want it to fail:\n%s", err, out)
			case !tc.fail && err != nil:
				t.Errorf("the child test failed (%v); want it skipped:\n%s", err, out)
			}
			for _, want := range []string{tc.outcome, reason} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
			if got := strings.Contains(string(out), "(TEND_E2E=require)"); got != tc.required {
				t.Errorf("child output names TEND_E2E=require: %v, want %v:\n%s", got, tc.required, out)
			}
		})
	}
}

// withoutEnv is env without the variable name.
func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
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
