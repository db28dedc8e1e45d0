package agent

import (
	"fmt"
	"testing"

	"github.com/tendkv/tend/templates"
)

func TestMergeTargets(t *testing.T) {
	for _, tc := range []struct {
		name string
		deps []templates.Deps
		want string
	}{
		{"keys only", []templates.Deps{{Keys: []string{"/b", "/a", "/b"}}}, "[/a /b]"},
		{"key under prefix", []templates.Deps{{Keys: []string{"/app/x", "/other"}}, {Prefixes: []string{"/app/"}}}, "[/app/* /other]"},
		{"nested prefixes", []templates.Deps{{Prefixes: []string{"/app/db/", "/app/", "/apple/"}}}, "[/app/* /apple/*]"},
		{"prefix equal to key", []templates.Deps{{Keys: []string{"/app"}, Prefixes: []string{"/app"}}}, "[/app*]"},
		{"sibling not covered", []templates.Deps{{Keys: []string{"/app0", "/ap"}, Prefixes: []string{"/app/"}}}, "[/ap /app/* /app0]"},
		{"everything", []templates.Deps{{Keys: []string{"/x"}, Prefixes: []string{"", "/y/"}}}, "[*]"},
		{"none", nil, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tg := range mergeTargets(tc.deps...) {
				s := tg.key
				if tg.prefix {
					s += "*"
				}
				got = append(got, s)
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Errorf("mergeTargets = %s, want %s", s, tc.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{"app-mode": "APP_MODE", "log.level": "LOG_LEVEL", "JAVA_OPTS": "JAVA_OPTS", "a/b c": "A_B_C"} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}
