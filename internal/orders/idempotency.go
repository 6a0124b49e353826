package orders

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/events"
)

// DefaultKeyTTL is how long an idempotency key is remembered by default.
const DefaultKeyTTL = 24 * time.Hour

// MaxKeyLength is the longest idempotency key accepted, in bytes.
const MaxKeyLength = 255

// keyLockWait bounds how long a request waits for another one that holds
// its idempotency key: a create commits in milliseconds, so a longer wait
// means that request is stuck, and the caller is better off told to retry
// (409, Retry-After) than kept waiting.
const keyLockWait = 500 * time.Millisecond

// keyField names the key in field errors, as the contract names it.
const keyField = "header.Idempotency-Key"

// lockNotAvailable is PostgreSQL's SQLSTATE 55P03 (lock_timeout ran out).
const lockNotAvailable = "55P03"

// notNullViolation is PostgreSQL's SQLSTATE 23502.
const notNullViolation = "23502"

// WithIdempotencyKeys remembers each create's idempotency key for ttl and,
// when required, refuses a create without one.
func WithIdempotencyKeys(ttl time.Duration, required bool) Option {
	return func(s *Service) { s.keyTTL, s.keyRequired = ttl, required }
}

// WithRequiredIfMatch refuses a status change that names no version
// (apperr.ErrPreconditionRequired) when required is true.
func WithRequiredIfMatch(required bool) Option {
	return func(s *Service) { s.ifMatchRequired = required }
}

// keyedCreate is the statement of a create with key: the order and the
// key's record, the request's fingerprint and the order as created, which a
// retry gets back.
func (s *Service) keyedCreate(key string, itemsJSON []byte, o Order) (*db.InsertOrderWithKeyParams, error) {
	if !validKey(key) {
		return nil, apperr.Invalid(keyField, fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxKeyLength))
	}
	response, err := json.Marshal(storedOrder(o))
	if err != nil {
		return nil, fmt.Errorf("encode order: %w", err)
	}
	return &db.InsertOrderWithKeyParams{
		ID:          o.ID,
		UserID:      o.UserID,
		Items:       itemsJSON,
		TotalPrice:  o.TotalPrice,
		CreatedAt:   o.CreatedAt,
		Key:         key,
		Fingerprint: fingerprint(itemsJSON),
		Response:    response,
		ExpiresAt:   o.CreatedAt.Add(s.keyTTL),
		LockTimeout: strconv.FormatInt(keyLockWait.Milliseconds(), 10) + "ms",
	}, nil
}

// fingerprint identifies a create request by what decides its outcome:
// the operation and the canonical form of its body (the items as the
// service reads them: declared members only, in their order, numbers in
// one notation), so that a retry which spells the same JSON differently is
// still the same request.
func fingerprint(itemsJSON []byte) []byte {
	h := sha256.New()
	h.Write([]byte("POST /orders/\n"))
	h.Write(itemsJSON)
	return h.Sum(nil)
}

// validKey: 1 to MaxKeyLength printable ASCII characters (space to tilde).
func validKey(key string) bool {
	if key == "" || len(key) > MaxKeyLength {
		return false
	}
	for i := range len(key) {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}

// createWithKey writes the order, its key's record and its event in one
// round trip, or returns the order the key's earlier request created (and
// writes nothing). It refuses the key when that request had another body,
// and answers apperr.ErrInProgress when that request still holds the key
// after keyLockWait. An expired record frees its key for this request.
func (s *Service) createWithKey(ctx context.Context, order Order, keyed db.InsertOrderWithKeyParams) (*Order, error) {
	msg, err := events.NewOrderEvent(ctx, order.event())
	if err != nil {
		return nil, err
	}
	for range 2 { // a second pass only after an expired record was removed
		err := s.insertWithEvent(ctx, msg, func(q *db.Queries) {
			q.InsertOrderWithKey(ctx, []db.InsertOrderWithKeyParams{keyed})
		})
		if !keyRecorded(err) {
			return nil, keyError(err)
		}
		rec, err := s.queries.GetIdempotencyKey(ctx, db.GetIdempotencyKeyParams{UserID: keyed.UserID, Key: keyed.Key})
		if errors.Is(err, pgx.ErrNoRows) {
			continue // expired and deleted since our statement
		}
		if err != nil {
			return nil, keyError(err)
		}
		if !rec.ExpiresAt.After(s.now()) {
			_, err := s.queries.DeleteExpiredIdempotencyKey(ctx, db.DeleteExpiredIdempotencyKeyParams{UserID: keyed.UserID, Key: keyed.Key, Now: s.now()})
			if err != nil {
				return nil, keyError(err)
			}
			continue
		}
		if !bytes.Equal(rec.Fingerprint, keyed.Fingerprint) {
			return nil, apperr.Invalid(keyField, fmt.Sprintf(
				"was used for another request body (order %s); send a new key for a new order", rec.OrderID))
		}
		var earlier storedOrder
		if err := json.Unmarshal(rec.Response, &earlier); err != nil {
			return nil, fmt.Errorf("decode the answer recorded for idempotency key: %w", err)
		}
		o := Order(earlier)
		return &o, nil
	}
	// Another request took the key over between our statements: it is in flight.
	return nil, fmt.Errorf("idempotency key: %w", apperr.ErrInProgress)
}

// keyRecorded reports whether err is InsertOrderWithKey's answer to a key
// recorded already: no key row claimed, so no id for the order.
func keyRecorded(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == notNullViolation &&
		pgErr.TableName == "orders" && pgErr.ColumnName == "id"
}

// keyError turns a lock wait that ran out into apperr.ErrInProgress: the
// request holding the key has not finished.
func keyError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == lockNotAvailable {
		return fmt.Errorf("idempotency key held by a request in flight: %w", apperr.ErrInProgress)
	}
	return err
}

// Precondition is the versions a conditional request names (If-Match,
// If-None-Match): any version (*) or those listed. A nil *Precondition is
// an unconditional request.
type Precondition struct {
	Any      bool
	Versions []int64
}

// Matches reports whether an order at version satisfies p; a nil p always does.
func (p *Precondition) Matches(version int64) bool {
	if p == nil || p.Any {
		return true
	}
	for _, v := range p.Versions {
		if v == version {
			return true
		}
	}
	return false
}

// versions is the UPDATE's if_match argument: NULL when any version will do,
// else the list, empty (nothing matches) rather than NULL when none parsed.
func (p *Precondition) versions() []int64 {
	if p == nil || p.Any {
		return nil
	}
	return append([]int64{}, p.Versions...)
}
