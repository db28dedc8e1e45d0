package testenv

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// CheckImports fails t for each import of the non-test Go files in dir that
// allowed rejects: a package's test keeps it from depending on what it must
// not (a leaf stays a leaf).
func CheckImports(t testing.TB, dir string, allowed func(importPath string) bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed(path) {
				t.Errorf("%s imports %s, which this package must not depend on", fset.Position(imp.Pos()), path)
			}
		}
	}
}
