package main

import (
	"fmt"
	"io"
	"strings"
)

// printTable writes rows under an upper-cased header inside ASCII borders,
// like etcdctl -w table.
func printTable(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var rule strings.Builder
	rule.WriteString("+")
	for _, n := range widths {
		rule.WriteString(strings.Repeat("-", n+2) + "+")
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %-*s |", widths[i], c)
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintln(w, rule.String())
	upper := make([]string, len(header))
	for i, h := range header {
		upper[i] = strings.ToUpper(h)
	}
	line(upper)
	fmt.Fprintln(w, rule.String())
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, rule.String())
}

// printRows writes rows comma-separated, like etcdctl's simple format.
func printRows(w io.Writer, rows [][]string) {
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, ", "))
	}
}
