package main

import (
	"fmt"
	"slices"
	"strings"
)

// targets reports, for each payload, how the run stands against the figures
// Hypha aims for; they are reported, never asserted, since a shared machine's
// noise can move any of them.
func targets(cells []cell) string {
	var b strings.Builder
	b.WriteString("| target | payload | this run | met |\n|---|---:|---|:---:|\n")
	var sizes []int
	for _, c := range cells {
		if !slices.Contains(sizes, c.payload) {
			sizes = append(sizes, c.payload)
		}
	}
	for _, p := range sizes {
		find := func(name string, inFlight int) (cell, bool) {
			for _, c := range cells {
				if c.contender == name && c.payload == p && c.inFlight == inFlight && c.calls > 0 {
					return c, true
				}
			}
			return cell{}, false
		}
		rate := func(t string, name, baseName string, want float64) {
			c, ok1 := find(name, 64)
			base, ok2 := find(baseName, 64)
			if ok1 && ok2 {
				r := c.callsPerSec() / base.callsPerSec()
				row(&b, t, p, fmt.Sprintf("%.2f×", r), r >= want)
			}
		}
		p50 := func(t string, name string, want float64) {
			c, ok1 := find(name, 1)
			base, ok2 := find(rawSafeName, 1)
			if ok1 && ok2 {
				r := float64(c.p50) / float64(base.p50)
				row(&b, t, p, fmt.Sprintf("%.2f× (%s vs %s)", r, round(c.p50), round(base.p50)), r <= want)
			}
		}
		rate("hypha-server at 64 in flight ≥ 0.95× raw-safe calls/s", "hypha-server", rawSafeName, 0.95)
		rate("hypha-server-64w (MAX_WORKERS 64) at 64 in flight ≥ 0.95× raw-safe-64w calls/s", "hypha-server-64w", rawSafeName+"-64w", 0.95)
		p50("hypha-server sequential p50 ≤ 1.2× raw-safe's", "hypha-server", 1.2)
		rate("hypha (client + server) at 64 in flight ≥ 0.85× raw-safe calls/s", "hypha", rawSafeName, 0.85)
		p50("hypha sequential p50 ≤ 1.4× raw-safe's", "hypha", 1.4)
		for _, name := range []string{"hypha-server", "hypha"} {
			if c, ok := find(name, 64); ok {
				r := float64(c.p99) / float64(c.p50)
				row(&b, name+" p99 ≤ 3× p50 at 64 in flight", p, fmt.Sprintf("%.2f× (%s / %s)", r, round(c.p99), round(c.p50)), r <= 3)
			}
		}
		ahead, total := 0, 0
		var behind []string
		for _, w := range cells {
			if w.contender != "watermill" || w.payload != p || w.calls == 0 {
				continue
			}
			h, ok := find("hypha", w.inFlight)
			if !ok {
				continue
			}
			for _, f := range []struct {
				name string
				ok   bool
			}{
				{"calls/s", h.callsPerSec() > w.callsPerSec()},
				{"p50", h.p50 < w.p50},
				{"p99", h.p99 < w.p99},
				{"allocs", h.allocsPerCall() < w.allocsPerCall()},
				{"CPU", h.cpuPer1000() < w.cpuPer1000()},
			} {
				total++
				if f.ok {
					ahead++
				} else {
					behind = append(behind, fmt.Sprintf("%s at %d", f.name, w.inFlight))
				}
			}
		}
		if total > 0 {
			got := fmt.Sprintf("ahead on %d of %d figures", ahead, total)
			if len(behind) > 0 {
				got += "; behind on " + strings.Join(behind, ", ")
			}
			row(&b, "hypha ahead of watermill on every figure", p, got, ahead == total)
		}
	}
	return b.String()
}

func row(b *strings.Builder, target string, payload int, got string, met bool) {
	mark := "no"
	if met {
		mark = "yes"
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s |\n", target, size(payload), got, mark)
}
