package orders

import (
	"context"
	"encoding/json"
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

// cacheKey names the cached form of an order. The "v2" is the format of
// storedOrder: change the struct, bump the version, and old entries are
// simply never read again.
func cacheKey(id uuid.UUID) string { return "order:v2:" + id.String() }

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

// cached returns the cached order, if there is a readable one, and else the
// lease for filling the cache after reading the database.
func (s *Service) cached(ctx context.Context, id uuid.UUID) (o Order, lease string, hit bool) {
	if s.cache == nil {
		return Order{}, "", false
	}
	b, lease, hit := s.cache.Get(ctx, cacheKey(id))
	if !hit {
		return Order{}, lease, false
	}
	var c storedOrder
	if err := json.Unmarshal(b, &c); err != nil || c.ID != id || c.Version < 1 || c.ProcessedAt == nil {
		return Order{}, "", false // unreadable or not cacheable: the database answers; the entry expires
	}
	return Order(c), "", true
}

// fillCache caches a processed order a reader loaded from the database
// after a miss.
func (s *Service) fillCache(ctx context.Context, lease string, o Order) {
	if s.cache == nil || o.ProcessedAt == nil {
		return
	}
	s.cache.Fill(ctx, cacheKey(o.ID), lease, cacheVersion(o), s.cacheTTL, func() ([]byte, error) {
		return json.Marshal(storedOrder(o))
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
	if b, err := json.Marshal(storedOrder(o)); err == nil {
		s.cache.Put(ctx, cacheKey(o.ID), cacheVersion(o), b, s.cacheTTL)
	}
}
