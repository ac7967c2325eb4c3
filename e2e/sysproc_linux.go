package e2e

import "syscall"

// sysProcAttr puts a child in its own process group (so Stop reaches all of
// it) and has the kernel kill it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
