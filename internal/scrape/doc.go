// Package scrape reads a Prometheus /metrics page for tests: the metric
// families, their shape (type and label names) and their values.
package scrape
