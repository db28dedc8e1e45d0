// Package lockedbuf is a bytes.Buffer that goroutines may write while a test
// reads it: the stderr of a child process copied by exec, or a logger's
// output.
package lockedbuf
