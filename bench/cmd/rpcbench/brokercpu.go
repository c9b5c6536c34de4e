package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// brokerPID is the operating-system process of the local RabbitMQ node, 0
// when it is not known (another machine, or rabbitmqctl not allowed): its
// CPU is then not reported.
var brokerPID int

// findBroker asks the local node for its OS process id. Only a broker on
// this machine can be measured; the bench says so when it cannot.
func findBroker() {
	out, err := exec.Command("rabbitmqctl", "-q", "eval", "os:getpid().").Output()
	if err == nil {
		brokerPID, err = strconv.Atoi(strings.Trim(strings.TrimSpace(string(out)), `"`))
	}
	if err != nil || brokerCPU() < 0 {
		brokerPID = 0
		fmt.Fprintln(os.Stderr, "rpcbench: the broker's CPU is not measured (not a local RabbitMQ node):", err)
	}
}

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times; 100
// on every Linux this runs on.
const clockTick = time.Second / 100

// brokerCPU is the broker process's user + system time so far, -1 when it
// cannot be read.
func brokerCPU() time.Duration {
	if brokerPID == 0 {
		return -1
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", brokerPID))
	if err != nil {
		return -1
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields after its closing one. utime and stime are fields 14 and 15.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * clockTick
}
