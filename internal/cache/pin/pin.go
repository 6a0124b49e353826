// Package pin wraps a rueidis client so that the commands it sends are never
// recycled.
//
// rueidis returns a command's argument slice to a pool shared by every client
// in the process once its reply has arrived, and hands it to the next command
// built, by any client. Nothing the race detector can see orders that reuse
// after the connection's writer goroutine read the slice: the reply proves
// the write happened, but only through the socket, and when a connection
// breaks the dead writer's reads are never published. A pinned command costs
// one small allocation instead and is never shared.
//
// Because the pool is the process's, every client of a process must be
// pinned, the tests' own as well as the service's.
package pin

import (
	"context"

	"github.com/redis/rueidis"
)

// Client returns c with every command it sends pinned.
func Client(c rueidis.Client) rueidis.Client {
	if _, ok := c.(pinned); ok {
		return c
	}
	return pinned{c}
}

type pinned struct{ rueidis.Client }

func (p pinned) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	return p.Client.Do(ctx, cmd.Pin())
}

func (p pinned) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	for i := range multi {
		multi[i] = multi[i].Pin()
	}
	return p.Client.DoMulti(ctx, multi...)
}

func (p pinned) Nodes() map[string]rueidis.Client {
	nodes := p.Client.Nodes()
	for addr, node := range nodes {
		nodes[addr] = pinned{node}
	}
	return nodes
}
