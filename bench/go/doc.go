// Package ctxbench holds the Go side of ctx's own benchmarks (issue 6):
// fan-out cancel latency and the memory of live and waited-on child contexts.
// Go's own context benchmarks come from `go test -bench . context`; these are
// the shapes that package does not measure. Each has a Rust twin of the same
// name in ctx-runtime's benches (see bench/README.md).
//
// Run with: GOMAXPROCS=2 go test -run XXX -bench . -benchmem -cpu 2 .
package ctxbench
