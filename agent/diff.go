package agent

import (
	"fmt"
	"io"

	"github.com/pmezard/go-difflib/difflib"
)

// writeDiff writes a unified diff from what dest holds to data.
func writeDiff(w io.Writer, dest string, rev int64, prev onDisk, data []byte) error {
	from := dest
	if !prev.exists {
		from = "/dev/null"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        difflib.SplitLines(string(prev.data)),
		B:        difflib.SplitLines(string(data)),
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
