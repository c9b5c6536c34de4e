package telemetry

// durationBuckets returns the histogram bucket boundaries, in seconds, for
// how long an entrypoint's run or a call took: from half a millisecond to 30
// s, so that fast calls spread over several buckets and slow ones still land
// below the last. The slice is new on each call.
func durationBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
}
