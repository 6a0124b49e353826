package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/orders"
)

const defaultPageSize = 50

// CreateOrder creates an order owned by the caller.
func (s *Server) CreateOrder(ctx context.Context, req api.CreateOrderRequestObject) (api.CreateOrderResponseObject, error) {
	items := make([]orders.Item, len(req.Body.Items))
	for i, it := range req.Body.Items {
		items[i] = orders.Item{ProductID: it.ProductId, Quantity: it.Quantity, Price: it.Price}
	}
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orders.Create(ctx, userID, items)
	if err != nil {
		return nil, err
	}
	return api.CreateOrder201JSONResponse(toAPIOrder(o)), nil
}

// GetOrder returns one of the caller's orders.
func (s *Server) GetOrder(ctx context.Context, req api.GetOrderRequestObject) (api.GetOrderResponseObject, error) {
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orders.Get(ctx, userID, req.OrderId)
	if err != nil {
		return nil, err
	}
	return api.GetOrder200JSONResponse(toAPIOrder(o)), nil
}

// UpdateOrderStatus moves one of the caller's orders to a new status.
func (s *Server) UpdateOrderStatus(ctx context.Context, req api.UpdateOrderStatusRequestObject) (api.UpdateOrderStatusResponseObject, error) {
	userID, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	o, err := s.orders.UpdateStatus(ctx, userID, req.OrderId, orders.Status(req.Body.Status))
	if err != nil {
		return nil, err
	}
	return api.UpdateOrderStatus200JSONResponse(toAPIOrder(o)), nil
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
	}
}
