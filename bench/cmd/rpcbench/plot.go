package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
)

// svgPlot draws, for the cells of one payload, throughput and p99 by calls in
// flight, one line per contender: two panels side by side, the x axis log2 of
// the in-flight count, throughput on a linear y axis and p99 on a log10 one.
func svgPlot(cells []cell, picked []contender, payload int) string {
	const (
		w, h           = 960, 420
		panelW, panelH = 380, 300
		top            = 50
	)
	var levels []int
	for _, c := range cells {
		if c.payload == payload && c.calls > 0 && !slices.Contains(levels, c.inFlight) {
			levels = append(levels, c.inFlight)
		}
	}
	slices.Sort(levels)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" text-anchor="middle">add over RabbitMQ and the embedded broker, %s request</text>`+"\n", w/2, size(payload))
	if len(levels) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	xs := func(n int) float64 { // position within a panel, log2 of the in-flight count
		lo, hi := math.Log2(float64(levels[0])), math.Log2(float64(levels[len(levels)-1]))
		if hi == lo {
			return panelW / 2
		}
		return (math.Log2(float64(n)) - lo) / (hi - lo) * panelW
	}
	series := func(c contender) []cell {
		var s []cell
		for _, x := range cells {
			if x.contender == c.name && x.payload == payload && x.calls > 0 {
				s = append(s, x)
			}
		}
		return s
	}

	// Throughput, linear from 0.
	maxRate := 0.0
	for _, c := range cells {
		if c.payload == payload {
			maxRate = max(maxRate, c.callsPerSec())
		}
	}
	maxRate = niceCeil(maxRate)
	left := 70.0
	panel(&b, left, top, panelW, panelH, "calls/s by calls in flight", levels, xs)
	for i := 0; i <= 4; i++ {
		v := maxRate * float64(i) / 4
		y := top + panelH - panelH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y, left+panelW, y, left-6, y+4, v)
	}
	for i, c := range picked {
		s := series(c)
		pts := make([]string, len(s))
		for j, x := range s {
			pts[j] = fmt.Sprintf("%.1f,%.1f", left+xs(x.inFlight), top+panelH-panelH*x.callsPerSec()/maxRate)
		}
		line(&b, pts, colour(i))
	}

	// p99, log10.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cells {
		if c.payload == payload && c.calls > 0 {
			lo = min(lo, math.Floor(math.Log10(c.p99.Seconds()*1000)))
			hi = max(hi, math.Ceil(math.Log10(c.p99.Seconds()*1000)))
		}
	}
	if hi == lo {
		hi++
	}
	left2 := 70.0 + panelW + 110
	panel(&b, left2, top, panelW, panelH, "p99 latency (ms, log scale) by calls in flight", levels, xs)
	for e := lo; e <= hi; e++ {
		y := top + panelH - panelH*(e-lo)/(hi-lo)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%g</text>`+"\n",
			left2, y, left2+panelW, y, left2-6, y+4, math.Pow(10, e))
	}
	for i, c := range picked {
		s := series(c)
		pts := make([]string, len(s))
		for j, x := range s {
			v := math.Log10(x.p99.Seconds() * 1000)
			pts[j] = fmt.Sprintf("%.1f,%.1f", left2+xs(x.inFlight), top+panelH-panelH*(v-lo)/(hi-lo))
		}
		line(&b, pts, colour(i))
	}

	// Legend, under the panels.
	for i, c := range picked {
		x := 70.0 + float64(i%6)*145
		y := float64(top+panelH+50) + float64(i/6)*18
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			x, y-4, x+22, y-4, colour(i), x+28, y, html.EscapeString(c.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws a panel's frame, title and x axis.
func panel(b *strings.Builder, left, top, w, h float64, title string, levels []int, xs func(int) float64) {
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, w, h)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-size="13">%s</text>`+"\n", left+w/2, top-8, html.EscapeString(title))
	for _, n := range levels {
		x := left + xs(n)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#444"/><text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n",
			x, top+h, x, top+h+5, x, top+h+18, n)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">calls in flight</text>`+"\n", left+w/2, top+h+34)
}

func line(b *strings.Builder, pts []string, colour string) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colour)
	for _, p := range pts {
		xy := strings.Split(p, ",")
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], colour)
	}
}

func colour(i int) string {
	palette := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
	return palette[i%len(palette)]
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
