package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var tendBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tend-cli-test-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	tendBin = filepath.Join(dir, "tend")
	out, err := exec.Command("go", "build", "-o", tendBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic("build tend: " + err.Error())
	}
	return m.Run()
}

func TestEmbedSmoke(t *testing.T) {
	ep, stop := startEtcd(t, t.TempDir())
	defer stop()
	cmd := exec.Command(tendBin, "--endpoints", ep, "put", "/a", "b")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	t.Log(ep, out.String())
}
