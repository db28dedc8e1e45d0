package process_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps process a leaf: the standard library and x/sys only,
// so the agent's hooks and any other caller can use it without cycles.
func TestImports(t *testing.T) {
	checkImports(t, ".", func(path string) bool {
		return !strings.Contains(path, ".") || path == "golang.org/x/sys/unix"
	})
}

// checkImports fails for each import of the non-test Go files in dir that
// allowed rejects.
func checkImports(t *testing.T, dir string, allowed func(string) bool) {
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
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
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
