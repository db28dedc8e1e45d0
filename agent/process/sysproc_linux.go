package process

import "syscall"

// sysProcAttr puts the process in a group of its own (so a stop reaches
// its children too) and has the kernel send it sig when the thread that
// started it ends.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}
