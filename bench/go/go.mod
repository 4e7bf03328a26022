module ctxbench

// 1.19 so that Debian's plain golang-go (the fallback of bench/install-go)
// can build it too; bench/compare prefers the newest golang-1.2x-go.
go 1.19
