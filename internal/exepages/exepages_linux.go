package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Release drops the resident pages of the executable's read-only mappings
// and reports how many bytes of address space it advised. It reads
// /proc/self/maps; a mapping is the executable's when its device and inode
// are those of /proc/self/exe, so a binary replaced on disk meanwhile is
// still recognised.
func Release() (int64, error) {
	var exe syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &exe); err != nil {
		return 0, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read mappings: %w", err)
	}
	var advised int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		m, ok := parseMapping(sc.Bytes())
		if !ok || m.inode != exe.Ino || m.dev != exe.Dev || !m.readOnlyPrivate() {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, madvDontNeed); errno != 0 {
			return advised, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, errno)
		}
		advised += int64(m.end - m.start)
	}
	return advised, sc.Err()
}

// madvDontNeed is MADV_DONTNEED: for a private file mapping never written
// to, the pages are unmapped and read again from the file when next used.
const madvDontNeed = 4

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end uintptr
	perms      string // e.g. "r-xp"
	dev        uint64
	inode      uint64
}

// readOnlyPrivate says whether dropping the mapping's pages loses nothing:
// not writable (so no page differs from the file) and private.
func (m mapping) readOnlyPrivate() bool {
	return len(m.perms) == 4 && m.perms[1] == '-' && m.perms[3] == 'p'
}

// parseMapping parses "start-end perms offset major:minor inode path".
func parseMapping(line []byte) (mapping, bool) {
	f := bytes.Fields(line)
	if len(f) < 5 {
		return mapping{}, false
	}
	addr := bytes.SplitN(f[0], []byte("-"), 2)
	devs := bytes.SplitN(f[3], []byte(":"), 2)
	if len(addr) != 2 || len(devs) != 2 {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(string(addr[0]), 16, 64)
	end, err2 := strconv.ParseUint(string(addr[1]), 16, 64)
	major, err3 := strconv.ParseUint(string(devs[0]), 16, 32)
	minor, err4 := strconv.ParseUint(string(devs[1]), 16, 32)
	inode, err5 := strconv.ParseUint(string(f[4]), 10, 64)
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			return mapping{}, false
		}
	}
	return mapping{
		start: uintptr(start), end: uintptr(end), perms: string(f[1]),
		dev: mkdev(uint32(major), uint32(minor)), inode: inode,
	}, true
}

// mkdev builds a device number as stat reports it (glibc's gnu_dev_makedev).
func mkdev(major, minor uint32) uint64 {
	return uint64(major&0xfff)<<8 | uint64(major&^0xfff)<<32 | uint64(minor&0xff) | uint64(minor&^0xff)<<12
}
