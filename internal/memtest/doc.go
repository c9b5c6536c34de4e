// Package memtest measures what a service's memory does under large
// requests: its test builds a service of testdata/memsvc, runs it in a
// process of its own on the test broker, loads it with requests and events
// of MAX_MESSAGE_SIZE in the shapes that cost the most to decode, and bounds
// the peak of its resident set. It is a package of its own so that its
// minute of load runs beside the other packages' tests, not inside one's
// time limit.
package memtest
