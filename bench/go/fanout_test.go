package ctxbench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// settle gives goroutines that were just started time to reach their
// `<-ctx.Done()` and park. Called with the timer stopped.
func settle() {
	runtime.Gosched()
	time.Sleep(2 * time.Millisecond)
}

// settleAll waits, with the timer stopped, until all n goroutines have
// counted themselves in `started` (each does so right before its receive),
// then gives them 2 ms to park: what the Rust twin does with its tasks
// (common/ops.rs, Group::settle).
func settleAll(started *atomic.Int64, n int) {
	for started.Load() < int64(n) {
		time.Sleep(100 * time.Microsecond)
	}
	settle()
}

// BenchmarkFanoutCancel: N goroutines, each owning one child of a common root
// (child, cancelChild := WithCancel(root)) and blocked on `<-child.Done()`;
// one op is the time from cancel() of the root to the last goroutine having
// finished (sync.WaitGroup.Wait returning). Setup (contexts, goroutines,
// parking) is outside the timer: every goroutine has counted itself in
// right before its receive, then 2 ms to park, as the Rust side waits for
// every task. Also reports ns/task = ns/op / N.
//
// The Rust twin: N tokio tasks on a multi-thread runtime with 2 workers, each
// owning a child context and awaiting ctx.done(); same start and stop points.
func BenchmarkFanoutCancel(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		n := n
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.StopTimer()
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				root, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				var started atomic.Int64
				wg.Add(n)
				for j := 0; j < n; j++ {
					child, cancelChild := context.WithCancel(root)
					done := child.Done() // allocate the channel before the goroutine starts
					go func() {
						defer wg.Done()
						defer cancelChild() // releases the child, as dropping it does in Rust
						started.Add(1)
						<-done
					}()
				}
				settleAll(&started, n)
				start := time.Now()
				b.StartTimer()
				cancel()
				wg.Wait()
				b.StopTimer()
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/float64(n), "ns/task")
		})
	}
}

// liveBytes returns the live heap after a full GC.
func liveStats() (heap, stack uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// BenchmarkChildContextLive: one op creates a child of a common root with
// WithCancel and keeps it (and its cancel func) alive. -benchmem's B/op and
// allocs/op are what creating one child costs (the parent's children map
// growth amortised in); live-B/child is the heap still held per child after a
// GC, i.e. the memory of a live child context.
//
// The Rust twin: `root.with_cancel()` pushed into a Vec<(Context, CancelHandle)>
// reserved outside the timer.
func BenchmarkChildContextLive(b *testing.B) {
	root, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxs := make([]context.Context, b.N)
	cancels := make([]context.CancelFunc, b.N)
	heap0, _ := liveStats()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctxs[i], cancels[i] = context.WithCancel(root)
	}
	b.StopTimer()
	heap1, _ := liveStats()
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(b.N), "live-B/child")
	runtime.KeepAlive(ctxs)
	runtime.KeepAlive(cancels)
}

// BenchmarkDoneWaiter: one op creates a child of a common root and starts a
// goroutine blocked on `<-child.Done()`. B/op and allocs/op are the heap cost
// of one waiter (child context, its Done channel, the closure, the goroutine's
// g); live-heap-B/waiter and stack-B/waiter are what stays in use per parked
// waiter after a GC. Run it with a fixed -benchtime (e.g. 100000x).
//
// The Rust twin: a tokio task (2 workers) per child awaiting ctx.done(); the
// figures per waiting done() future come from the allocator.
func BenchmarkDoneWaiter(b *testing.B) {
	root, cancel := context.WithCancel(context.Background())
	var wg, parked sync.WaitGroup
	heap0, stack0 := liveStats()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		child, cancelChild := context.WithCancel(root)
		done := child.Done()
		wg.Add(1)
		parked.Add(1)
		go func() {
			defer wg.Done()
			defer cancelChild()
			parked.Done()
			<-done
		}()
	}
	parked.Wait() // every goroutine has run up to its receive: its allocations count
	b.StopTimer()
	settle()
	heap1, stack1 := liveStats()
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(b.N), "live-heap-B/waiter")
	b.ReportMetric(float64(int64(stack1)-int64(stack0))/float64(b.N), "stack-B/waiter")
	cancel()
	wg.Wait()
}
