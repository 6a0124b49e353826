package orders

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/money"
)

// Cache holds serialised orders between reads (Redis in production, see
// internal/cache.Store). Every method degrades to a no-op or a miss: the
// database stays the source of truth and a cache failure never fails a call.
type Cache interface {
	// Get returns the value under key (hit), or false on a miss or any
	// failure; a miss comes with a lease for Fill ("" when it cannot be filled).
	Get(ctx context.Context, key string) (value []byte, lease string, hit bool)
	// Fill caches what a reader loaded after its miss, unless a writer has
	// cached a newer version since (even one gone from the cache by now);
	// it calls value only if it is going to write.
	Fill(ctx context.Context, key, lease string, version int64, ttl time.Duration, value func() ([]byte, error))
	// Put caches a writer's committed value; it must win over older fills
	// and be retried if the cache does not take it.
	Put(ctx context.Context, key string, version int64, value []byte, ttl time.Duration)
}

// Option configures a Service.
type Option func(*Service)

// WithCache reads orders through c; entries live ttl.
//
// Only processed orders are cached. Processing (processed_at, a new
// version) is written by the workers, which do not write the cache, so a
// cached copy of an order not processed yet could be older than its row,
// and its ETag with it: a client would get 304 for a stale copy, or keep
// sending an If-Match that fails. Every other write of an order goes
// through this service, which caches its result before answering, so a
// cached processed order is never older than its row.
func WithCache(c Cache, ttl time.Duration) Option {
	return func(s *Service) { s.cache, s.cacheTTL = c, ttl }
}

// cacheKey names the cached form of an order. The "v3" is the format of
// the entry (see cacheEntry): change it, bump the version, and old entries
// are simply never read again.
func cacheKey(id uuid.UUID) string { return "order:v3:" + id.String() }

// WithEncoder sets how an order is written as a response body: the cache
// keeps that body, so that a hit is served as the bytes it holds. Without
// it, the body is the JSON of storedOrder.
func WithEncoder(encode func(Order) ([]byte, error)) Option {
	return func(s *Service) { s.encoder = encode }
}

func (s *Service) encode(o Order) ([]byte, error) {
	if s.encoder != nil {
		return s.encoder(o)
	}
	return json.Marshal(storedOrder(o))
}

// Encoded is an order as a response body, with what a reader needs to
// answer without decoding it: whose it is and its version (the ETag).
type Encoded struct {
	ID      uuid.UUID
	UserID  int64
	Version int64
	Body    []byte
}

// cacheEntry is what the cache holds for an order: a header line "<id>
// <user id> <version> <P if processed, else ->" and the response body,
// which decodes as a storedOrder (the encoders name the same fields). Only
// processed orders are cached (see WithCache); the mark keeps an entry of
// an unprocessed one from ever being served, whoever wrote it.
func cacheEntry(o Order, body []byte) []byte {
	b := make([]byte, 0, 64+len(body))
	b = append(b, o.ID.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, o.UserID, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, o.Version, 10)
	if o.ProcessedAt != nil {
		b = append(b, " P\n"...)
	} else {
		b = append(b, " -\n"...)
	}
	return append(b, body...)
}

// parseCacheEntry reads an entry cached for id; false when it is not one.
func parseCacheEntry(id uuid.UUID, b []byte) (Encoded, bool) {
	header, body, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return Encoded{}, false
	}
	idText, rest, ok := bytes.Cut(header, []byte{' '})
	if !ok || string(idText) != id.String() {
		return Encoded{}, false
	}
	userText, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return Encoded{}, false
	}
	versionText, processed, ok := bytes.Cut(rest, []byte{' '})
	if !ok || string(processed) != "P" {
		return Encoded{}, false
	}
	userID, err := strconv.ParseInt(string(userText), 10, 64)
	if err != nil {
		return Encoded{}, false
	}
	version, err := strconv.ParseInt(string(versionText), 10, 64)
	if err != nil || version < 1 || len(body) == 0 {
		return Encoded{}, false
	}
	return Encoded{ID: id, UserID: userID, Version: version, Body: body}, true
}

// storedOrder is the form an order takes outside its row: cached, and as
// the answer an idempotency key replays. It is decoupled from Order so that
// a change to the domain type cannot silently change what stored copies
// decode to. Idempotency records keep it for IDEMPOTENCY_KEY_TTL: change it
// only compatibly, and bump cacheKey's version.
type storedOrder struct {
	ID          uuid.UUID    `json:"id"`
	UserID      int64        `json:"user_id"`
	Items       []Item       `json:"items"`
	TotalPrice  money.Amount `json:"total_price"`
	Status      Status       `json:"status"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	ProcessedAt *time.Time   `json:"processed_at"`
	Version     int64        `json:"version"`
}

// cacheVersion orders the states of one order in the cache: the row's
// version, which every write increments, so a fill can never replace what a
// later write cached.
func cacheVersion(o Order) int64 { return o.Version }

// cachedEncoded returns the cached order as its body, if there is a
// readable one, and else the lease for filling the cache after reading the
// database.
func (s *Service) cachedEncoded(ctx context.Context, id uuid.UUID) (e Encoded, lease string, hit bool) {
	if s.cache == nil {
		return Encoded{}, "", false
	}
	b, lease, hit := s.cache.Get(ctx, cacheKey(id))
	if !hit {
		return Encoded{}, lease, false
	}
	e, ok := parseCacheEntry(id, b)
	if !ok {
		return Encoded{}, "", false // unreadable: the database answers; the entry expires
	}
	return e, "", true
}

// cached returns the cached order, if there is a readable one, and else the
// lease for filling the cache after reading the database.
func (s *Service) cached(ctx context.Context, id uuid.UUID) (o Order, lease string, hit bool) {
	e, lease, hit := s.cachedEncoded(ctx, id)
	if !hit {
		return Order{}, lease, false
	}
	var c storedOrder
	if err := json.Unmarshal(e.Body, &c); err != nil || c.ID != id || c.Version != e.Version || c.ProcessedAt == nil {
		return Order{}, "", false // unreadable or not cacheable: the database answers; the entry expires
	}
	return Order(c), "", true
}

// fillCache caches a processed order a reader loaded from the database
// after a miss; body is its encoding when the reader has it already.
func (s *Service) fillCache(ctx context.Context, lease string, o Order, body []byte) {
	if s.cache == nil || o.ProcessedAt == nil {
		return
	}
	s.cache.Fill(ctx, cacheKey(o.ID), lease, cacheVersion(o), s.cacheTTL, func() ([]byte, error) {
		if body == nil {
			var err error
			if body, err = s.encode(o); err != nil {
				return nil, err
			}
		}
		return cacheEntry(o, body), nil
	})
}

// putCache caches a processed order a writer has just committed. An order
// not processed yet needs no entry written: every version it has is older
// than every version it will have once processed, so no stale fill can
// follow it.
func (s *Service) putCache(ctx context.Context, o Order) {
	if s.cache == nil || o.ProcessedAt == nil {
		return
	}
	if b, err := s.encode(o); err == nil {
		s.cache.Put(ctx, cacheKey(o.ID), cacheVersion(o), cacheEntry(o, b), s.cacheTTL)
	}
}
