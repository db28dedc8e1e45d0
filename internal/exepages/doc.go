// Package exepages returns to the kernel the pages of the running program's
// own executable that the process holds mapped but does not need now.
//
// A Go binary's code and read-only data are mapped from its file. Every
// page a process touches stays in its resident set until it exits, and the
// kernel maps pages in windows (64 KB by default) around each one touched,
// so start-up alone — flag parsing, configuration decoding, the package
// initialisers of every library linked in — leaves most of a large binary
// resident, long after that code last ran. Release drops the process's
// mappings of those pages (they are clean: the file has them), like the
// kernel freeing its init sections after boot; a page needed again is
// mapped back from the page cache on its next use, a minor fault. Writable
// mappings (the data segment) are never touched.
//
// It is for a long-running process that is idle almost all its life, such
// as the agent; on systems other than Linux Release does nothing.
package exepages
