// Command checkservices is task up's preflight: it dials PostgreSQL, Redis
// and RabbitMQ where DATABASE_URL, REDIS_URL and AMQP_URL (environment, then
// .env) point, and exits 1 naming each one that does not answer and the
// command that starts it. It prints nothing when all three answer.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/services"
)

func main() {
	getenv, err := config.Getenv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkservices:", err)
		os.Exit(1)
	}
	svcs, err := services.FromEnv(getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkservices:", err)
		os.Exit(1)
	}
	unreachable := services.Check(context.Background(), svcs, 3*time.Second)
	for _, err := range unreachable {
		fmt.Fprintln(os.Stderr, err)
	}
	if len(unreachable) > 0 {
		os.Exit(1)
	}
}
