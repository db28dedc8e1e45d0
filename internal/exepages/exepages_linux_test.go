package exepages

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/binary"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// changed lives in the data segment (it has a non-zero initial value) and
// is written at run time: Release must leave it as written.
var changed = [4]int64{1, 2, 3, 4}

// rodata is read-only data in the test binary, 256 KB of it: its pages are
// mapped from the file when read.
//
//go:embed testdata/rodata.txt
var rodata string

func TestReleaseDropsOnlyReadOnlyPages(t *testing.T) {
	changed[2] = 42
	sum := checksum(rodata) // maps every page of it in
	if n := presentPages(t, rodata); n != pages(rodata) {
		t.Fatalf("%d of %d pages of the data present after reading it all", n, pages(rodata))
	}
	advised, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if advised < int64(len(rodata)) {
		t.Fatalf("Release advised %d bytes, less than the %d of the data alone", advised, len(rodata))
	}
	// Code that runs after Release (this test, reading pagemap) maps its
	// pages back, each with a window around it that may reach into either
	// end of the data; its middle must be gone.
	middle := rodata[faultAround : len(rodata)-faultAround]
	if n := presentPages(t, middle); n != 0 {
		t.Errorf("%d of the %d pages in the middle of the read-only data still mapped after Release", n, pages(middle))
	}
	// Released pages are mapped back from the file when next used.
	if got := checksum(rodata); got != sum {
		t.Errorf("the data reads back with checksum %x, was %x", got, sum)
	}
	if n := presentPages(t, rodata); n != pages(rodata) {
		t.Errorf("%d of %d pages present after reading the data again", n, pages(rodata))
	}
	if changed != [4]int64{1, 2, 42, 4} {
		t.Errorf("a variable written at run time reads %v after Release; the data segment must be left alone", changed)
	}
}

// faultAround is the most the kernel maps around a page a process touches
// (fault_around_bytes, 64 KB by default).
const faultAround = 64 << 10

func checksum(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// pages is the number of whole pages inside s.
func pages(s string) int {
	size := uintptr(os.Getpagesize())
	first := (uintptr(unsafe.Pointer(unsafe.StringData(s))) + size - 1) / size
	last := (uintptr(unsafe.Pointer(unsafe.StringData(s))) + uintptr(len(s))) / size
	return int(last - first)
}

// presentPages counts the whole pages inside s that the process has mapped,
// from /proc/self/pagemap (bit 63 of each page's entry: present).
func presentPages(t *testing.T, s string) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := uintptr(os.Getpagesize())
	first := (uintptr(unsafe.Pointer(unsafe.StringData(s))) + size - 1) / size
	buf := make([]byte, 8*pages(s))
	if _, err := f.ReadAt(buf, int64(first*8)); err != nil {
		t.Fatalf("read pagemap: %v", err)
	}
	n := 0
	for i := 0; i < len(buf); i += 8 {
		if binary.LittleEndian.Uint64(buf[i:])&(1<<63) != 0 {
			n++
		}
	}
	return n
}

func TestParseMapping(t *testing.T) {
	m, ok := parseMapping([]byte("00400000-00e26000 r-xp 00000000 fd:01 1234567   /usr/bin/tend"))
	if !ok {
		t.Fatal("did not parse")
	}
	want := mapping{start: 0x400000, end: 0xe26000, perms: "r-xp", dev: mkdev(0xfd, 1), inode: 1234567}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if !m.readOnlyPrivate() {
		t.Error("r-xp is read-only and private")
	}
	for _, perms := range []string{"rw-p", "r--s", "rwxp"} {
		if (mapping{perms: perms}).readOnlyPrivate() {
			t.Errorf("%s must not be released", perms)
		}
	}
	if _, ok := parseMapping([]byte("7ffd-7ffe rw-p")); ok {
		t.Error("a short line parsed")
	}
}

// TestDeviceNumbersMatchStat checks mkdev against stat on a real file: the
// executable is recognised by the device and inode stat reports.
func TestDeviceNumbersMatchStat(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		if m, ok := parseMapping(sc.Bytes()); ok && m.inode == st.Ino && m.dev == st.Dev {
			return
		}
	}
	t.Fatalf("no mapping with the executable's device %#x and inode %d", st.Dev, st.Ino)
}
