package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/rueidis"

	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/sdnotify"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/money"
)

// dbCeiling is the create transaction (order row + outbox row) issued in
// process through pgx, with the API's pool size: what the database allows
// without HTTP, JSON, auth or validation.
type dbCeiling struct {
	svc    *orders.Service
	userID int64
	close  func()
}

func newDBCeiling(ctx context.Context, dbURL string, poolSize int, userID int64) (*dbCeiling, error) {
	pool, err := database.Open(ctx, dbURL, poolSize, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return &dbCeiling{svc: orders.NewService(pool), userID: userID, close: pool.Close}, nil
}

var ceilingItems = []orders.Item{
	{ProductID: 42, Quantity: 2, Price: money.MustParse("2.9")},
	{ProductID: 7, Quantity: 1, Price: money.MustParse("10.05")},
}

func (c *dbCeiling) create(ctx context.Context, _, _ int) error {
	_, err := c.svc.Create(ctx, c.userID, ceilingItems)
	return err
}

// serveCeiling is the bench binary re-executed as a bare Echo server (a
// separate process, like the API) answering every GET with the bytes of a
// real cached order response: what HTTP on this machine allows. With a
// Redis URL it is the Redis ceiling instead: the same bytes stored once
// under redisKey and fetched with one GET per request through rueidis, as
// the API's cache does (client-side caching off, as there), so the gap to
// the API is what our middleware and handler cost on top of one Redis
// round trip. It reports its address with READY=1
// (NOTIFY_SOCKET) and serves until killed.
func serveCeiling(bodyFile, redisURL, redisKey string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if redisURL == "" {
		e.GET("/orders/:id/", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body) })
	} else {
		client, err := redisCeilingClient(redisURL, redisKey, body)
		if err != nil {
			return err
		}
		defer client.Close()
		e.GET("/orders/:id/", func(c echo.Context) error {
			b, err := client.Do(c.Request().Context(), client.B().Get().Key(redisKey).Build()).AsBytes()
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
		})
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if err := sdnotify.FromEnv(os.Getenv).Notify(sdnotify.Ready, sdnotify.Var(process.HTTPAddr, ln.Addr().String())); err != nil {
		return err
	}
	return <-serveErr
}

// redisCeilingClient connects as the API does and stores body under key
// (for an hour: the bench deletes nothing it does not own by prefix).
func redisCeilingClient(url, key string, body []byte) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := client.Do(ctx, client.B().Set().Key(key).Value(rueidis.BinaryString(body)).Ex(time.Hour).Build()).Error(); err != nil {
		client.Close()
		return nil, err
	}
	return client, nil
}

// startCeilingServer runs serveCeiling in a child process; redisURL empty
// for the in-memory ceiling.
func startCeilingServer(ctx context.Context, dir string, body []byte, redisURL, redisKey string) (string, *proc.Proc, error) {
	bodyFile := filepath.Join(dir, "ceiling-body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := []string{"-serve-ceiling", bodyFile}
	name := "ceiling"
	if redisURL != "" {
		args = append(args, "-ceiling-redis", redisURL, "-ceiling-key", redisKey)
		name = "ceiling-redis"
	}
	p, err := proc.Start(ctx, proc.Spec{
		Name: name, Path: self, Args: args, Env: os.Environ(),
		LogFile: filepath.Join(dir, name+".log"), SysProcAttr: ownSession,
	})
	if err != nil {
		return "", nil, err
	}
	return p.URL(process.HTTPAddr), p, nil
}
