package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns skips into failures when
// set to "require".
const RequireEnv = "TEND_E2E"

// Required reports whether missing test dependencies must fail the test
// instead of skipping it.
func Required() bool { return os.Getenv(RequireEnv) == "require" }

// Program returns the path of the program name found in PATH. When it is
// missing the test skips with "needs <name> (Debian package <pkg>)", or fails
// with the same message when TEND_E2E=require.
func Program(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "needs %s (Debian package %s): %v", name, debianPackage, err)
	}
	return path
}

// Missing skips the test with the formatted reason, or fails it when
// TEND_E2E=require.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf(format+" ("+RequireEnv+"=require)", args...)
	}
	t.Skipf(format, args...)
}
