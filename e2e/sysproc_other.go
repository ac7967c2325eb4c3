//go:build !linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group so Stop reaches all of it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
