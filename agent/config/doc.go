// Package config decodes and validates the agent's HCL configuration: where
// the store is, which templates render to which files, the hooks that run
// after a change, the processes the agent supervises, and the health gate.
//
// Loading is one step with two halves, so a running agent can be handed a new
// configuration only when the whole of it is good:
//
//  1. Decode: parse one file, or every *.hcl file of a folder merged, into
//     the raw block structure (HCL reports syntax errors with file:line,col).
//  2. Validate: check every value (durations, perms, signals, names that
//     refer to other blocks, template syntax, source files), build the
//     hooks, parse the templates, and return a Config, or one error listing
//     every problem, each starting with file:line,col and naming the fix.
package config
