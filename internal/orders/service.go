package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/outbox"
)

// Service creates, reads, updates and lists orders.
type Service struct {
	pool    *pgxpool.Pool
	queries *db.Queries
	now     func() time.Time

	cache    Cache // nil: every read goes to the database
	cacheTTL time.Duration
	encoder  func(Order) ([]byte, error) // nil: the JSON of storedOrder

	announcer *outbox.Announcer // nil: the forwarders find events at their safety poll

	keyTTL          time.Duration // how long an idempotency key is remembered
	keyRequired     bool          // a create without a key is refused
	ifMatchRequired bool          // a status change without If-Match is refused
}

// NewService returns a Service on pool.
func NewService(pool *pgxpool.Pool, opts ...Option) *Service {
	s := &Service{pool: pool, queries: db.New(pool), now: time.Now, keyTTL: DefaultKeyTTL}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// WithAnnouncer wakes the outbox forwarders through a after each commit
// that wrote events.
func WithAnnouncer(a *outbox.Announcer) Option {
	return func(s *Service) { s.announcer = a }
}

// Create stores a new PENDING order owned by userID.
func (s *Service) Create(ctx context.Context, userID int64, items []Item) (Order, error) {
	o, _, err := s.CreateOnce(ctx, userID, nil, items)
	return o, err
}

// CreateOnce stores a new PENDING order owned by userID, once per key: with
// a key, the key is recorded in the order's transaction, and a later call
// with the same key and items creates nothing and returns the order as it
// was created (replayed true). The same key with other items is refused; a
// call while the key's first call is still running gets apperr.ErrInProgress
// after a short wait. A nil key makes no such promise.
func (s *Service) CreateOnce(ctx context.Context, userID int64, key *string, items []Item) (o Order, replayed bool, err error) {
	if key == nil && s.keyRequired {
		return Order{}, false, fmt.Errorf("create order: %w", &apperr.MissingError{Field: keyField})
	}
	order, err := s.newOrder(userID, items)
	if err != nil {
		return Order{}, false, fmt.Errorf("create order: %w", err)
	}
	itemsJSON, err := json.Marshal(items)
	if err != nil {
		return Order{}, false, fmt.Errorf("create order: encode items: %w", err)
	}
	var earlier *Order
	if key == nil {
		err = s.createWithEvent(ctx, order, itemsJSON)
	} else {
		var keyed *db.InsertOrderWithKeyParams
		if keyed, err = s.keyedCreate(*key, itemsJSON, order); err != nil {
			return Order{}, false, fmt.Errorf("create order: %w", err)
		}
		earlier, err = s.createWithKey(ctx, order, *keyed)
	}
	if isUnknownUser(err) {
		// A valid token whose user no longer exists (the database was reset
		// while the token lived): the caller is not a user any more.
		return Order{}, false, fmt.Errorf("create order: user %d: %w", userID, apperr.ErrUnauthenticated)
	}
	if err != nil {
		return Order{}, false, fmt.Errorf("create order: %w", err)
	}
	if earlier != nil {
		return *earlier, true, nil
	}
	s.announcer.Committed()
	s.putCache(ctx, order)
	return order, false, nil
}

// createWithEvent writes order and its new_order event in one round trip.
func (s *Service) createWithEvent(ctx context.Context, order Order, itemsJSON []byte) error {
	msg, err := events.NewOrderEvent(ctx, order.event())
	if err != nil {
		return err
	}
	return s.insertWithEvent(ctx, msg, func(q *db.Queries) {
		q.InsertOrder(ctx, []db.InsertOrderParams{{
			ID:         order.ID,
			UserID:     order.UserID,
			Items:      itemsJSON,
			TotalPrice: order.TotalPrice,
			CreatedAt:  order.CreatedAt,
		}})
	})
}

// insertWithEvent runs insert, a sqlc batch query that writes an order, with
// the outbox INSERT of the order's event in the same batch: one round trip.
// PostgreSQL runs a batch sent outside a transaction as one implicit
// transaction, so the order and its event are committed together or not at
// all. The batch is sent once more, on another connection, when it surely
// did not commit and PostgreSQL was unavailable: pgx sent nothing (a
// connection found dead), or PostgreSQL itself answered the order's
// statement with an outage (the FATAL a restarting server leaves on its
// connections), which it sends before it commits anything. Any other
// failure after sending leaves the outcome unknown, and the batch is never
// repeated.
func (s *Service) insertWithEvent(ctx context.Context, event *message.Message, insert func(*db.Queries)) error {
	send := func() (uncommitted bool, err error) {
		w := &withStatements{DBTX: s.pool, extra: &pgx.Batch{}}
		if err := outbox.Queue(w.extra, events.TopicNewOrder, event); err != nil {
			return true, err
		}
		insert(db.New(w))
		// The results are read here, not through sqlc's batch results,
		// which would close them without the event's answer.
		_, inserted := w.sent.Exec()
		closed := w.sent.Close() // the event's INSERT and the commit
		if inserted != nil {
			var pgErr *pgconn.PgError
			return errors.As(inserted, &pgErr), inserted
		}
		return false, closed
	}
	uncommitted, err := send()
	if err != nil && ctx.Err() == nil && (pgconn.SafeToRetry(err) || uncommitted && database.Unavailable(err)) {
		_, err = send()
	}
	return database.Classify(err)
}

// withStatements is a db.DBTX whose batches carry extra's statements after
// their own; sent holds the results of the batch it sent.
type withStatements struct {
	db.DBTX
	extra *pgx.Batch
	sent  pgx.BatchResults
}

func (w *withStatements) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range w.extra.QueuedQueries {
		b.Queue(q.SQL, q.Arguments...)
	}
	w.sent = w.DBTX.SendBatch(ctx, b)
	return w.sent
}

// newOrder is the order a create inserts: PENDING at version 1, as the
// column defaults make it.
func (s *Service) newOrder(userID int64, items []Item) (Order, error) {
	total, err := Total(items)
	if err != nil {
		return Order{}, err
	}
	id, err := uuid.NewV7() // time-ordered: new rows land at the end of the primary key index
	if err != nil {
		return Order{}, fmt.Errorf("new id: %w", err)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	return Order{
		ID: id, UserID: userID, Items: items, TotalPrice: total,
		Status: StatusPending, CreatedAt: now, UpdatedAt: now, Version: 1,
	}, nil
}

func isUnknownUser(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation && pgErr.ConstraintName == "orders_user_id_fkey"
}

// Get returns the order if userID owns it: from the cache when it holds the
// order, else from the database, filling the cache.
func (s *Service) Get(ctx context.Context, userID int64, id uuid.UUID) (Order, error) {
	o, lease, hit := s.cached(ctx, id)
	if !hit {
		var err error
		if o, err = s.load(ctx, id); err != nil {
			return Order{}, err
		}
		s.fillCache(ctx, lease, o, nil)
	}
	if o.UserID != userID {
		return Order{}, fmt.Errorf("get order %s: %w", id, apperr.ErrForbidden)
	}
	return o, nil
}

// GetEncoded is Get for a reader that only writes the order out: a cache
// hit is answered with the body the cache holds, neither decoded nor
// encoded again. The body is the encoder's (see WithEncoder).
func (s *Service) GetEncoded(ctx context.Context, userID int64, id uuid.UUID) (Encoded, error) {
	e, lease, hit := s.cachedEncoded(ctx, id)
	if !hit {
		o, err := s.load(ctx, id)
		if err != nil {
			return Encoded{}, err
		}
		body, err := s.encode(o)
		if err != nil {
			return Encoded{}, fmt.Errorf("encode order %s: %w", id, err)
		}
		s.fillCache(ctx, lease, o, body)
		e = Encoded{ID: o.ID, UserID: o.UserID, Version: o.Version, Body: body}
	}
	if e.UserID != userID {
		return Encoded{}, fmt.Errorf("get order %s: %w", id, apperr.ErrForbidden)
	}
	return e, nil
}

// load reads the order from the database.
func (s *Service) load(ctx context.Context, id uuid.UUID) (Order, error) {
	row, err := s.queries.GetOrder(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, fmt.Errorf("get order %s: %w", id, apperr.ErrNotFound)
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	return fromRow(row)
}

// UpdateStatus moves the order to status if the transition table allows it.
func (s *Service) UpdateStatus(ctx context.Context, userID int64, id uuid.UUID, status Status) (Order, error) {
	return s.UpdateStatusIf(ctx, userID, id, status, nil)
}

// UpdateStatusIf moves the order to status if the transition table allows it
// and, when ifMatch is not nil, if the order's version is one it names
// (else apperr.ErrPreconditionFailed, and nothing changes). The checks and
// the write are one UPDATE, so concurrent changes cannot both apply. Asking
// for the current status changes nothing and succeeds.
func (s *Service) UpdateStatusIf(ctx context.Context, userID int64, id uuid.UUID, status Status, ifMatch *Precondition) (Order, error) {
	if ifMatch == nil && s.ifMatchRequired {
		return Order{}, fmt.Errorf("update order %s: %w", id, apperr.ErrPreconditionRequired)
	}
	if !status.Valid() {
		return Order{}, apperr.Invalid("body.status", "unknown status "+strconv.Quote(string(status)))
	}
	var (
		row     db.Order
		changed bool
	)
	err := s.inTx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		updated, err := q.UpdateOrderStatus(ctx, db.UpdateOrderStatusParams{
			NewStatus:    status,
			ID:           id,
			UserID:       userID,
			FromStatuses: sourcesOf(status),
			IfMatch:      ifMatch.versions(),
		})
		if err == nil {
			row, changed = updated.Order, true
			return publishStatusChanged(ctx, tx, row, updated.PreviousStatus)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Nothing changed: find out why, from the row as it is now. A
		// failed If-Match wins over the status checks, which read the body
		// (RFC 9110, 13.2.1); a missing or foreign order wins over it.
		row, err = q.GetOrder(ctx, id)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return apperr.ErrNotFound
		case err != nil:
			return err
		case row.UserID != userID:
			return apperr.ErrForbidden
		case !ifMatch.Matches(row.Version):
			return apperr.ErrPreconditionFailed
		case row.Status == status:
			return nil
		default:
			return &apperr.ConflictError{Detail: fmt.Sprintf("cannot change status from %s to %s", row.Status, status)}
		}
	})
	if err != nil {
		return Order{}, fmt.Errorf("update order %s: %w", id, err)
	}
	if changed {
		s.announcer.Committed()
	}
	o, err := fromRow(row)
	if err != nil {
		return Order{}, err
	}
	// After the commit and before the response: once the caller has the
	// new status, no reader can get the old one from the cache.
	s.putCache(ctx, o)
	return o, nil
}

// ListQuery selects a page of a user's orders.
type ListQuery struct {
	Limit  int
	Cursor string  // opaque, from a previous Page.Next; empty for the first page
	Status *Status // optional filter
}

// Page is one page of orders, newest first.
type Page struct {
	Orders []Order
	Next   string // cursor of the next page; empty on the last page
}

// List returns the orders of ownerID, newest first. Only the owner may list them.
func (s *Service) List(ctx context.Context, callerID, ownerID int64, lq ListQuery) (Page, error) {
	if callerID != ownerID {
		return Page{}, fmt.Errorf("list orders of user %d: %w", ownerID, apperr.ErrForbidden)
	}
	if lq.Limit < 1 || lq.Limit > MaxPageSize {
		return Page{}, apperr.Invalid("query.limit", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	params := db.ListOrdersByUserParams{UserID: ownerID, RowLimit: int32(lq.Limit) + 1} //nolint:gosec // limit is 1..100
	if lq.Status != nil {
		params.Status = db.NullOrderStatus{OrderStatus: *lq.Status, Valid: true}
	}
	if lq.Cursor != "" {
		at, id, err := decodeCursor(lq.Cursor)
		if err != nil {
			return Page{}, err
		}
		params.AfterCreatedAt, params.AfterID = &at, &id
	}
	rows, err := s.queries.ListOrdersByUser(ctx, params)
	if err != nil {
		return Page{}, fmt.Errorf("list orders of user %d: %w", ownerID, err)
	}
	var page Page
	if len(rows) > lq.Limit {
		rows = rows[:lq.Limit]
		last := rows[len(rows)-1]
		page.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	page.Orders = make([]Order, 0, len(rows))
	for _, r := range rows {
		o, err := fromRow(r)
		if err != nil {
			return Page{}, err
		}
		page.Orders = append(page.Orders, o)
	}
	return page, nil
}

// publishStatusChanged writes the order_status_changed event in tx.
func publishStatusChanged(ctx context.Context, tx pgx.Tx, row db.Order, previous Status) error {
	order, err := fromRow(row)
	if err != nil {
		return err
	}
	msg, err := events.StatusChangedEvent(ctx, order.event(), string(previous))
	if err != nil {
		return err
	}
	return outbox.Publish(tx, events.TopicOrderStatusChanged, msg)
}

// inTx runs fn in one transaction: committed if fn succeeds, rolled back
// otherwise. Outbox messages published with tx commit or vanish with it. A
// transaction that meets a PostgreSQL restart before its COMMIT runs once
// more (see database.InTx).
func (s *Service) inTx(ctx context.Context, fn func(tx pgx.Tx, q *db.Queries) error) error {
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error { return fn(tx, s.queries.WithTx(tx)) })
}

// foreignKeyViolation is PostgreSQL's SQLSTATE 23503.
const foreignKeyViolation = "23503"
