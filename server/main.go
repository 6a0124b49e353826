// Command server runs the orders HTTP API.
//
//	server          serve the API (migrating first when MIGRATE_ON_START=true)
//	server migrate  apply pending migrations and exit (the deploy step)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordersvc/orders/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	getenv, err := config.Getenv()
	if err == nil {
		err = run(ctx, os.Args[1:], getenv, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
