package orders_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/money"
)

// Example_client is the README's typed-client example, compiled with the
// tests so that it cannot drift from the generated client.
func Example_client() {
	ctx := context.Background()
	c, err := client.NewClientWithResponses("http://localhost:8080")
	if err != nil {
		panic(err)
	}
	tok, err := c.CreateTokenWithFormdataBodyWithResponse(ctx, client.CreateTokenFormdataRequestBody{
		Username: "alice@example.com", Password: "correct-horse-battery",
	})
	if err != nil || tok.JSON200 == nil {
		fmt.Println("login failed:", err)
		return
	}
	auth := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+tok.JSON200.AccessToken)
		return nil
	}
	var body client.CreateOrderJSONRequestBody
	body.Items = []client.OrderItem{{ProductId: 42, Quantity: 2, Price: money.MustParse("2.90")}}
	// One key per order, sent again unchanged if this call is retried: the
	// order is created once, and a retry gets the first answer.
	key := uuid.NewString()
	created, err := c.CreateOrderWithResponse(ctx, &client.CreateOrderParams{IdempotencyKey: &key}, body, auth)
	if err != nil || created.JSON201 == nil {
		fmt.Println("create failed:", err)
		return
	}
	fmt.Println(created.JSON201.TotalPrice) // 5.8, exact
	// Pay it only if nobody changed it since: 412 otherwise.
	etag := created.HTTPResponse.Header.Get("ETag")
	paid, err := c.UpdateOrderStatusWithResponse(ctx, created.JSON201.Id, &client.UpdateOrderStatusParams{IfMatch: &etag},
		client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, auth)
	if err != nil || paid.JSON200 == nil {
		fmt.Println("payment not recorded:", err)
		return
	}
	fmt.Println(paid.JSON200.Version) // 2

	// Before the access token expires: new tokens for the refresh token
	// (each refresh token works once; presenting one again revokes them all).
	next, err := c.CreateTokenWithFormdataBodyWithResponse(ctx, client.CreateTokenFormdataRequestBody{
		GrantType: client.TokenRequestGrantTypeRefreshToken, RefreshToken: tok.JSON200.RefreshToken,
	})
	if err != nil || next.JSON200 == nil {
		fmt.Println("refresh failed:", err)
		return
	}
	// Logging out: revoking the refresh token revokes the access tokens issued with it.
	_, err = c.RevokeTokenWithFormdataBodyWithResponse(ctx, client.RevokeTokenFormdataRequestBody{Token: next.JSON200.RefreshToken})
	if err != nil {
		fmt.Println("revoke failed:", err)
	}
}
