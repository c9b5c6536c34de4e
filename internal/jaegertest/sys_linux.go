package jaegertest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// childProcAttr makes the kernel kill Jaeger when the test process dies
// without running its cleanups (go test -timeout, a crash), so that it does
// not keep the fixed ports.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockPorts takes an exclusive flock on os.TempDir()/hypha-jaegertest.lock,
// waiting up to timeout while another test process holds it, and returns
// the function that releases it. The kernel releases it too when the
// process dies.
func lockPorts(timeout time.Duration) (func(), error) {
	path := filepath.Join(os.TempDir(), "hypha-jaegertest.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another test process has held %s (and so Jaeger's fixed ports) for %v", path, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
