package agent

import (
	"fmt"
	"io"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// writeDiff writes a unified diff from what dest holds to data.
func writeDiff(w io.Writer, dest string, rev int64, prev onDisk, data []byte) error {
	from := dest
	if !prev.exists {
		from = "/dev/null"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        lines(prev.data),
		B:        lines(data),
		FromFile: from,
		ToFile:   fmt.Sprintf("%s (revision %d)", dest, rev),
		Context:  3,
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, text)
	return err
}

// lines splits text into lines that keep their "\n"; a last line without
// one gets it, and empty text has no lines.
func lines(text []byte) []string {
	if len(text) == 0 {
		return nil
	}
	return difflib.SplitLines(strings.TrimSuffix(string(text), "\n"))
}
