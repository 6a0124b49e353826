package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/orders"
)

const defaultPageSize = 50

// CreateOrder creates an order owned by the caller, once per Idempotency-Key.
func (s *Server) CreateOrder(ctx context.Context, req api.CreateOrderRequestObject) (api.CreateOrderResponseObject, error) {
	items := make([]orders.Item, len(req.Body.Items))
	for i, it := range req.Body.Items {
		items[i] = orders.Item{ProductID: it.ProductId, Quantity: it.Quantity, Price: it.Price}
	}
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	o, replayed, err := s.orders.CreateOnce(ctx, userID, req.Params.IdempotencyKey, items)
	if err != nil {
		return nil, err
	}
	resp := api.CreateOrder201JSONResponse{
		Body:    toAPIOrder(o),
		Headers: api.CreateOrder201ResponseHeaders{ETag: etagOf(o.Version), Location: orderPath(o)},
	}
	if replayed {
		resp.Headers.IdempotentReplayed = &replayed
	}
	return resp, nil
}

// GetOrder returns one of the caller's orders, or 304 when If-None-Match
// names its current version.
func (s *Server) GetOrder(ctx context.Context, req api.GetOrderRequestObject) (api.GetOrderResponseObject, error) {
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orders.GetEncoded(ctx, userID, req.OrderId)
	if err != nil {
		return nil, err
	}
	if cond := preconditionOf(req.Params.IfNoneMatch, true); cond != nil && cond.Matches(o.Version) {
		return api.GetOrder304Response{Headers: api.GetOrder304ResponseHeaders{ETag: etagOf(o.Version)}}, nil
	}
	return encodedOrder200{body: o.Body, etag: etagOf(o.Version)}, nil
}

// encodedOrder200 is GetOrder's 200 with a body encoded already (by
// encodeOrder, possibly long ago: the cache keeps it): the headers and
// status of api.GetOrder200JSONResponse, and the body written as it is.
type encodedOrder200 struct {
	body []byte
	etag string
}

var _ api.GetOrderResponseObject = encodedOrder200{}

func (r encodedOrder200) VisitGetOrderResponse(w http.ResponseWriter) error {
	h := w.Header()
	jsonContentType.setOn(h)
	h.Set("ETag", r.etag)
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(r.body)
	return err
}

var jsonContentType = newFixedHeader("Content-Type", "application/json")

// encodeOrder writes an order as api.GetOrder200JSONResponse writes its
// body, byte for byte: the order service caches this encoding and
// GetOrder serves it.
func encodeOrder(o orders.Order) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(toAPIOrder(o)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UpdateOrderStatus moves one of the caller's orders to a new status, if
// it is still at a version If-Match names.
func (s *Server) UpdateOrderStatus(ctx context.Context, req api.UpdateOrderStatusRequestObject) (api.UpdateOrderStatusResponseObject, error) {
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ifMatch := preconditionOf(req.Params.IfMatch, false)
	o, err := s.orders.UpdateStatusIf(ctx, userID, req.OrderId, orders.Status(req.Body.Status), ifMatch)
	if err != nil {
		return nil, err
	}
	return api.UpdateOrderStatus200JSONResponse{Body: toAPIOrder(o), Headers: api.UpdateOrderStatus200ResponseHeaders{ETag: etagOf(o.Version)}}, nil
}

// ListUserOrders returns a page of the caller's orders, newest first.
func (s *Server) ListUserOrders(ctx context.Context, req api.ListUserOrdersRequestObject) (api.ListUserOrdersResponseObject, error) {
	q := orders.ListQuery{Limit: defaultPageSize}
	if req.Params.Limit != nil {
		q.Limit = *req.Params.Limit
	}
	if req.Params.Cursor != nil {
		q.Cursor = *req.Params.Cursor
	}
	if req.Params.Status != nil {
		st := orders.Status(*req.Params.Status)
		q.Status = &st
	}
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.orders.List(ctx, userID, req.UserId, q)
	if err != nil {
		return nil, err
	}
	resp := api.ListUserOrders200JSONResponse{Body: make([]api.Order, len(page.Orders))}
	for i, o := range page.Orders {
		resp.Body[i] = toAPIOrder(o)
	}
	if page.Next != "" {
		query := url.Values{"limit": {strconv.Itoa(q.Limit)}, "cursor": {page.Next}}
		if q.Status != nil {
			query.Set("status", string(*q.Status))
		}
		link := fmt.Sprintf(`</orders/user/%d/?%s>; rel="next"`, req.UserId, query.Encode())
		resp.Headers.Link = &link
	}
	return resp, nil
}

// caller returns the authenticated user. Every order operation declares
// security in the spec, so the validator has already put the user in ctx;
// a missing user is a wiring bug and must never fall through as user 0.
func caller(ctx context.Context) (int64, error) {
	id, ok := auth.UserFrom(ctx)
	if !ok {
		return 0, fmt.Errorf("%w: no authenticated user in request context", apperr.ErrUnauthenticated)
	}
	return id, nil
}

func toAPIOrder(o orders.Order) api.Order {
	items := make([]api.OrderItem, len(o.Items))
	for i, it := range o.Items {
		items[i] = api.OrderItem{ProductId: it.ProductID, Quantity: it.Quantity, Price: it.Price}
	}
	return api.Order{
		Id:          o.ID,
		UserId:      o.UserID,
		Items:       items,
		TotalPrice:  o.TotalPrice,
		Status:      api.OrderStatus(o.Status),
		CreatedAt:   o.CreatedAt,
		UpdatedAt:   o.UpdatedAt,
		ProcessedAt: o.ProcessedAt,
		Version:     o.Version,
	}
}
