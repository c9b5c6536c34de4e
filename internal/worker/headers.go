package worker

// MaxHeaders bounds how many headers a delivery may carry; one with more is
// refused before any work starts on it.
const MaxHeaders = 256

// maxCount bounds a counter read from a header: far above any retry or
// requeue limit, and far below where adding one could overflow.
const maxCount = 1 << 31

// HeaderCount reads a counter a message carries in a header (an attempt, a
// requeue count), whatever number type it arrived as, the same way for
// every type: a whole number clamped to [0, 2^31]; a fraction is cut, and
// NaN, a negative number, anything not a number or no header is 0.
func HeaderCount(v any) int {
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int8:
		f = float64(x)
	case int16:
		f = float64(x)
	case int32:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint8:
		f = float64(x)
	case uint16:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float32:
		f = float64(x)
	case float64:
		f = x
	default:
		return 0
	}
	switch {
	case !(f >= 0): // negative, or NaN
		return 0
	case f >= maxCount:
		return maxCount
	}
	return int(f)
}

// SplitPrefetch shares a pool of size workers among n consumers: prefetches
// that add up to size, as even as can be, the larger ones first; each is at
// least 1, so with more consumers than workers they add up to n.
func SplitPrefetch(size, n int) []int {
	base, extra := size/n, size%n
	if base == 0 {
		base, extra = 1, 0
	}
	out := make([]int, n)
	for i := range out {
		out[i] = base
		if i < extra {
			out[i]++
		}
	}
	return out
}
