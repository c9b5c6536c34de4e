package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// caller makes one call of add(1, 2) carrying pad, and checks the reply.
type caller func(ctx context.Context, pad string) error

// cell is what one contender did at one payload and one in-flight count.
type cell struct {
	contender string
	base      string // the contender "vs raw-safe" compares with
	payload   int    // request body size in bytes
	inFlight  int
	calls     int
	elapsed   time.Duration
	p50, p99  time.Duration
	mallocs   uint64        // process-wide, both sides when in process
	cpu       time.Duration // process user + system time
	brokerCPU time.Duration // the broker's user + system time; -1 when not measured
	err       error
}

func (c cell) callsPerSec() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.calls) / c.elapsed.Seconds()
}

func (c cell) allocsPerCall() float64 { return float64(c.mallocs) / float64(max(c.calls, 1)) }

// cpuPer1000 is the process CPU seconds spent per 1,000 calls.
func (c cell) cpuPer1000() float64 { return c.cpu.Seconds() * 1000 / float64(max(c.calls, 1)) }

// brokerPer1000 is the broker's CPU seconds per 1,000 calls as text, "-"
// when not measured (the embedded broker's is the process's own).
func (c cell) brokerPer1000() string {
	if c.brokerCPU < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", c.brokerCPU.Seconds()*1000/float64(max(c.calls, 1)))
}

// warmUp is how long a cell calls before it starts measuring: channels are
// open, queues bound and the broker's caches warm by then.
const warmUp = 300 * time.Millisecond

// measure keeps inFlight calls going for d and returns their figures; the
// first failing call ends the cell with its error.
func measure(ctx context.Context, call caller, pad string, inFlight int, d time.Duration) cell {
	c := cell{payload: bodySize(pad), inFlight: inFlight}
	if _, err := run(ctx, call, pad, inFlight, warmUp); err != nil {
		c.err = fmt.Errorf("warm-up: %w", err)
		return c
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0, broker0 := processCPU(), brokerCPU()
	start := time.Now()
	lat, err := run(ctx, call, pad, inFlight, d)
	c.elapsed = time.Since(start)
	c.cpu = processCPU() - cpu0
	c.brokerCPU = -1
	if broker1 := brokerCPU(); broker0 >= 0 && broker1 >= 0 {
		c.brokerCPU = broker1 - broker0
	}
	runtime.ReadMemStats(&after)
	c.mallocs = after.Mallocs - before.Mallocs
	c.calls = len(lat)
	c.err = err
	if len(lat) > 0 {
		slices.Sort(lat)
		c.p50 = lat[len(lat)*50/100]
		c.p99 = lat[min(len(lat)*99/100, len(lat)-1)]
	}
	return c
}

// run makes calls from inFlight goroutines until d has passed and returns
// every call's latency.
func run(ctx context.Context, call caller, pad string, inFlight int, d time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
	)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			var err error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err = call(ctx, pad); err != nil {
					if ctx.Err() == nil {
						cancel()
					} else {
						err = nil // another goroutine failed first
					}
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, firstErr
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The request body every contender sends is {"args":[1,2,"<pad>"],"kwargs":{}}
// (watermill's command carries the same three fields); pad fills it to the
// payload size.
const emptyBodySize = len(`{"args":[1,2,""],"kwargs":{}}`)

func padFor(size int) string { return strings.Repeat("x", max(size-emptyBodySize, 0)) }

func bodySize(pad string) int { return len(pad) + emptyBodySize }

var errBadReply = errors.New("rpcbench: add(1, 2) did not reply 3")
