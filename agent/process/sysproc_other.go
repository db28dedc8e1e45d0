//go:build !linux

package process

import "syscall"

// sysProcAttr puts the process in a group of its own, so a stop reaches
// its children too. Outside Linux nothing stops it if the agent dies.
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
