package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// markdown renders the cells as one table, with the run's conditions and
// what each contender does.
func markdown(cells []cell, picked []contender, d time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run of %s: %s per cell after a %s warm-up, GOMAXPROCS=%d, %s, RabbitMQ on the same machine.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), d, warmUp, runtime.GOMAXPROCS(0), runtime.Version())
	b.WriteString("| contender | payload | in flight | calls/s | p50 | p99 | allocs/call | CPU s/1k calls | broker CPU s/1k calls | vs raw-safe | vs raw-min |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cells {
		flight := fmt.Sprint(c.inFlight)
		if c.inFlight == 1 {
			flight = "1 (seq)"
		}
		if c.err != nil && c.calls == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | failed: %s | | | | | | | |\n", c.contender, size(c.payload), flight, oneLine(c.err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s | %s | %.0f | %.3f | %s | %s | %s |\n",
			c.contender, size(c.payload), flight, c.callsPerSec(), round(c.p50), round(c.p99),
			c.allocsPerCall(), c.cpuPer1000(), c.brokerPer1000(), ratio(c, cells, c.base), ratio(c, cells, rawMinName))
	}
	b.WriteString("\nNotes: payload is the request body's size (the reply is a number); p50/p99 are per-call latencies " +
		"seen by the caller; allocations and CPU are the whole process's, so they count both client and server for " +
		"every contender; the broker's CPU is RabbitMQ's own process, read from /proc (\"-\" on the embedded broker, " +
		"whose work is in the process's CPU); ratios are calls/s against the baseline at the same " +
		"payload and in-flight count.\n\n")
	for _, c := range picked {
		fmt.Fprintf(&b, "- **%s**: %s\n", c.name, c.about)
	}
	b.WriteString("\nTargets (reported, not asserted):\n\n")
	b.WriteString(targets(cells))
	return b.String()
}

func ratio(c cell, cells []cell, base string) string {
	for _, o := range cells {
		if o.contender == base && o.payload == c.payload && o.inFlight == c.inFlight && o.calls > 0 {
			return fmt.Sprintf("%.2f×", c.callsPerSec()/o.callsPerSec())
		}
	}
	return "-"
}

func size(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// round shortens a latency to three significant figures.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}
