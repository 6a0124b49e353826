// Package database opens the PostgreSQL pool and applies the embedded dbmate
// migrations safely when several processes start at once.
package database

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/amacneil/dbmate/v2/pkg/dbmate"
	_ "github.com/amacneil/dbmate/v2/pkg/driver/postgres" // registers the postgres driver with dbmate
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	dbfiles "github.com/ordersvc/orders/db"
	"github.com/ordersvc/orders/gen/db"
)

// migrationLockKey identifies the advisory lock that serialises migrators.
// Any constant works as long as every instance uses the same one.
const migrationLockKey int64 = 0x6f72646572735f6d // "orders_m"

// Open connects a pool and checks that the database answers. Outages the
// pool meets are logged to logger, once when they begin and once when they end.
func Open(ctx context.Context, databaseURL string, maxConns int, logger *slog.Logger) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.MaxConns = int32(maxConns) //nolint:gosec // validated positive and small by config
	watch := &outageWatch{logger: logger}
	cfg.ConnConfig.Tracer = watch
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	watch.pool.Store(pool)
	return pool, nil
}

// Start is how a process gets its database: migrations first when migrate
// is set (MIGRATE_ON_START), on migrationURL (a direct connection: the
// migration lock is a session's), then the pool on databaseURL (which may
// go through PgBouncer).
func Start(ctx context.Context, databaseURL, migrationURL string, maxConns int, migrate bool, logger *slog.Logger) (*pgxpool.Pool, error) {
	if migrate {
		if err := Migrate(ctx, migrationURL, logger); err != nil {
			return nil, err
		}
	}
	return Open(ctx, databaseURL, maxConns, logger)
}

// Migrate applies every pending migration. It holds a PostgreSQL advisory lock
// for the whole run because dbmate itself takes none: without it, two
// instances starting together would both try to apply the same migration.
// The lock belongs to a session, so databaseURL must be a direct connection
// (MIGRATION_DATABASE_URL), not one through a transaction pooler.
func Migrate(ctx context.Context, databaseURL string, logger *slog.Logger) error {
	m, err := newMigrator(databaseURL, logger)
	if err != nil {
		return err
	}
	if err := createIfMissing(m, logger); err != nil {
		return err
	}
	// pgxpool's parser: it also reads the pool_* parameters of a URL shared
	// with the pool, which pgx alone would send to PostgreSQL.
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrate: parse database URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing after use; nothing to recover

	q := db.New(conn)
	start := time.Now()
	if err := q.AcquireAdvisoryLock(ctx, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: acquire lock: %w", err)
	}
	defer func() {
		if err := q.ReleaseAdvisoryLock(context.WithoutCancel(ctx), migrationLockKey); err != nil {
			logger.Warn("migrate: release lock", slog.Any("error", err))
		}
	}()
	logger.Debug("migration lock acquired", slog.Duration("waited", time.Since(start)))

	pending, err := pendingMigrations(m)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.Migrate(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(pending) > 0 {
		// One line for the whole run, however many migrations a fresh
		// database needs; dbmate's own progress lines are at debug.
		logger.Info("database migrated", slog.Int("applied", len(pending)), slog.Any("migrations", pending))
	}
	return nil
}

// createIfMissing creates the database of a fresh installation, so that the
// first start needs no manual step. Another instance may create it at the
// same moment; only a database that still does not exist is an error.
func createIfMissing(m *dbmate.DB, logger *slog.Logger) error {
	drv, err := m.Driver()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	exists, err := drv.DatabaseExists()
	if err != nil || exists {
		return nil //nolint:nilerr // without the right to list databases, assume it exists; connecting will tell
	}
	if err := drv.CreateDatabase(); err != nil {
		if again, _ := drv.DatabaseExists(); !again {
			return fmt.Errorf("migrate: create database: %w", err)
		}
	}
	logger.Info("created database")
	return nil
}

// Pending returns how many embedded migrations the database has not applied.
func Pending(databaseURL string) (int, error) {
	m, err := newMigrator(databaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	pending, err := pendingMigrations(m)
	return len(pending), err
}

// pendingMigrations names the embedded migrations m's database has not
// applied, oldest first.
func pendingMigrations(m *dbmate.DB) ([]string, error) {
	migrations, err := m.FindMigrations()
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var pending []string
	for _, mig := range migrations {
		if !mig.Applied {
			pending = append(pending, mig.FileName)
		}
	}
	return pending, nil
}

func newMigrator(databaseURL string, logger *slog.Logger) (*dbmate.DB, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, errors.New("parse DATABASE_URL: not a URL")
	}
	m := dbmate.New(withoutPgxParams(u))
	m.FS = dbfiles.Migrations
	m.MigrationsDir = []string{"migrations"}
	m.AutoDumpSchema = false // the server has no business writing db/schema.sql
	m.Log = logWriter{logger: logger}
	return m, nil
}

// withoutPgxParams drops the URL parameters that pgx and pgxpool read
// (default_query_exec_mode, pool_max_conns, ...) from a copy of u: dbmate's
// driver would pass them on to PostgreSQL, which refuses unknown ones.
func withoutPgxParams(u *url.URL) *url.URL {
	q := u.Query()
	for key := range q {
		switch {
		case key == "default_query_exec_mode", key == "statement_cache_capacity", key == "description_cache_capacity",
			strings.HasPrefix(key, "pool_"):
			q.Del(key)
		}
	}
	out := *u
	out.RawQuery = q.Encode()
	return &out
}

// logWriter turns dbmate's progress lines into structured log records, at
// debug: Migrate sums a run up in one line at info.
type logWriter struct{ logger *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.logger.Debug("migrate", slog.String("step", line))
		}
	}
	return len(p), nil
}
