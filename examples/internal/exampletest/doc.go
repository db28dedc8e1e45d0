// Package exampletest runs the examples' programs as real processes in
// tests: it builds a Go main package into a temporary folder, starts a
// program with its output captured, and polls for a condition with a
// deadline instead of sleeping.
package exampletest
