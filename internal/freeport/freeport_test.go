package freeport

import (
	"net"
	"strings"
	"testing"
)

func TestAddrsAreDistinctAndBindable(t *testing.T) {
	addrs, err := Addrs(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice in %v", a, addrs)
		}
		seen[a] = true
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("%s is not a loopback address", a)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s: %v", a, err)
		}
		l.Close()
	}
}

func TestForms(t *testing.T) {
	if p := Port(t); p <= 0 || p > 65535 {
		t.Errorf("Port = %d", p)
	}
	if u := URL(t); !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("URL = %q", u)
	}
	if us := URLs(t, 3); len(us) != 3 || us[0] == us[1] || us[1] == us[2] || us[0] == us[2] {
		t.Errorf("URLs = %v", us)
	}
}
