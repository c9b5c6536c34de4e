//go:build !linux

package jaegertest

import (
	"syscall"
	"time"
)

// childProcAttr has nothing to add outside Linux.
func childProcAttr() *syscall.SysProcAttr { return nil }

// lockPorts does not lock outside Linux: tests using Jaeger must then not
// run in parallel test processes.
func lockPorts(time.Duration) (func(), error) { return func() {}, nil }
