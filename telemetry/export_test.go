package telemetry

// The label bounds, for the tests.
const (
	MaxMetricTargets = maxMetricTargets
	MaxMetricMethods = maxMetricMethods
)
