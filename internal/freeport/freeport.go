package freeport

import (
	"fmt"
	"net"
	"testing"
)

// Addrs returns n different loopback host:port pairs. Each port stays held
// until all are chosen, so the kernel cannot hand out one twice.
func Addrs(n int) ([]string, error) {
	addrs := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs, nil
}

// Addr is one free loopback host:port; it fails the test when there is none.
func Addr(t testing.TB) string {
	t.Helper()
	return addrs(t, 1)[0]
}

// Port is the port of Addr.
func Port(t testing.TB) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

// URL is "http://" and Addr.
func URL(t testing.TB) string {
	t.Helper()
	return URLs(t, 1)[0]
}

// URLs are n different "http://" URLs of free loopback ports.
func URLs(t testing.TB, n int) []string {
	t.Helper()
	urls := addrs(t, n)
	for i, a := range urls {
		urls[i] = "http://" + a
	}
	return urls
}

func addrs(t testing.TB, n int) []string {
	t.Helper()
	a, err := Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
