package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/hostile"
)

// TestHostileShapes sends every shape an attacker would and checks the
// answer a client sees: the expected status, never a 5xx, a problem+json
// body for every refusal, and a bounded answer (at most 20 field errors
// and a line saying how many more).
func TestHostileShapes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	token, ids := seedOrders(t, ts, 1)
	for _, shape := range hostile.Shapes() {
		t.Run(shape.Name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(shape.Request(t.Context(), t, ts.URL, token, ids[0].String()))
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			require.NoError(t, err)
			require.Equal(t, shape.Want, resp.StatusCode, "%s", body)
			if resp.StatusCode < http.StatusBadRequest {
				return
			}
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			require.Less(t, len(body), 8<<10, "the answer is bounded")
			var problem struct {
				Status int `json:"status"`
				Errors []struct {
					Field, Message string
				} `json:"errors"`
			}
			require.NoError(t, json.Unmarshal(body, &problem), "%s", body)
			require.Equal(t, resp.StatusCode, problem.Status)
			require.LessOrEqual(t, len(problem.Errors), maxReportedErrors+1)
		})
	}
}
