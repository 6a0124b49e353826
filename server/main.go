// Command server runs the orders HTTP API.
//
//	server          serve the API (migrating first when MIGRATE_ON_START=true)
//	server migrate  apply pending migrations and exit (the deploy step)
package main

import (
	"os"
	"runtime/debug"

	"github.com/ordersvc/orders/internal/process"
)

// defaultMemoryLimit is the API's soft memory limit unless GOMEMLIMIT says
// otherwise: near it the collector works harder instead of letting the heap
// grow (a login flood's argon2id buffers, mostly). It is soft: the process
// may exceed it rather than fail. The executable's mapped code takes about
// 31 MiB of the 64 MiB resident budget; this limit bounds the rest (see
// docs/decisions.md).
const defaultMemoryLimit = 30 << 20

// defaultGCPercent is the API's GOGC unless the environment sets one. A
// request allocates a few KiB and keeps almost nothing (the live heap is
// about 6 MiB), so the default of 100 collects many times a second under
// load; at 400 the collector runs a quarter as often, and the memory limit
// above still bounds the heap (docs/decisions.md).
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	process.Main("server", run)
}
