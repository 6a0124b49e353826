package main

import (
	"strconv"
	"strings"

	"github.com/ordersvc/orders/internal/orders"
)

// Headers of retries and conditional requests that Echo has no names for.
const (
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
	headerETag               = "ETag"
	headerIfMatch            = "If-Match"
	headerIfNoneMatch        = "If-None-Match"
)

// etagOf is the strong entity tag of an order at version: the version in
// quotes, as the order's JSON carries it.
func etagOf(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// orderPath is where an order lives (the Location of a created one).
func orderPath(o orders.Order) string { return "/orders/" + o.ID.String() + "/" }

// preconditionOf reads an If-Match (weak false: strong comparison, a weak
// tag never matches) or If-None-Match (weak true) value: nil when the
// header is absent, else "*" or the versions its entity tags name. A tag
// this server cannot have sent names no version, so it never matches:
// an If-Match made only of such tags fails.
func preconditionOf(header *string, weak bool) *orders.Precondition {
	if header == nil {
		return nil
	}
	p := &orders.Precondition{}
	for _, tag := range strings.Split(*header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			p.Any = true
			continue
		}
		if rest, isWeak := strings.CutPrefix(tag, "W/"); isWeak {
			if !weak {
				continue
			}
			tag = rest
		}
		quoted, ok := strings.CutPrefix(tag, `"`)
		if !ok {
			continue
		}
		digits, ok := strings.CutSuffix(quoted, `"`)
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(digits, 10, 64); err == nil && v > 0 && etagOf(v) == `"`+digits+`"` {
			p.Versions = append(p.Versions, v)
		}
	}
	return p
}
