package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/internal/apperr"
)

// FuzzVerifyClaims signs arbitrary payloads with the right key, so that
// only the claims decide. Without -fuzz it runs the seeds in
// testdata/fuzz/FuzzVerifyClaims as a normal test.
func FuzzVerifyClaims(f *testing.F) {
	f.Add(payloadWith("sub", `"42"`))
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	f.Fuzz(func(t *testing.T, payload string) {
		id, err := verifier.Verify(signedPayload(t, payload))
		if err != nil {
			if !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Fatalf("payload %s: %v, not ErrUnauthenticated", payload, err)
			}
			return
		}
		mustBeValidClaims(t, []byte(payload), id)
	})
}

// FuzzVerifyToken feeds arbitrary text to Verify as a bearer token. Without
// -fuzz it runs the seeds in testdata/fuzz/FuzzVerifyToken (some signed with
// the test key at testEpoch) as a normal test.
func FuzzVerifyToken(f *testing.F) {
	f.Add(signedPayload(f, payloadWith("sub", `"42"`)))
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := verifier.Verify(raw)
		if err != nil {
			if !errors.Is(err, apperr.ErrUnauthenticated) {
				t.Fatalf("token %q: %v, not ErrUnauthenticated", raw, err)
			}
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q, which is not a compact token", raw)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatalf("accepted %q, whose payload is not base64url: %v", raw, err)
		}
		mustBeValidClaims(t, payload, id)
	})
}

// mustBeValidClaims judges a payload Verify accepted for id at testEpoch,
// reading it with encoding/json rather than jwx: sub is id written as Issue
// writes it, iss and aud are ours, exp is a number not past (with the
// skew), nbf and iat are numbers not in the future (with the skew).
func mustBeValidClaims(t *testing.T, payload []byte, id int64) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		t.Fatalf("accepted payload %s, which is not a JSON object: %v", payload, err)
	}
	fail := func(why string) { t.Helper(); t.Fatalf("accepted payload %s for user %d: %s", payload, id, why) }
	if id < 1 || claims["sub"] != strconv.FormatInt(id, 10) {
		fail("sub is not the user id as Issue writes it")
	}
	if jti, ok := claims["jti"].(string); !ok {
		fail("jti is missing or not a string")
	} else if id, err := uuid.Parse(jti); err != nil || id.String() != jti {
		fail("jti is not a token id as Issue writes it")
	}
	if claims["iss"] != "orders-api" {
		fail("iss is not ours")
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != testAudience {
			fail("aud is not ours")
		}
	case []any:
		if !slices.Contains(aud, any(testAudience)) {
			fail("aud does not name us")
		}
	default:
		fail("aud is neither a string nor an array")
	}
	seconds := func(name string) (float64, bool) {
		v, ok := claims[name]
		if !ok {
			return 0, false
		}
		n, isNumber := v.(json.Number)
		if !isNumber {
			fail(name + " is not a number")
		}
		f, err := n.Float64()
		if err != nil {
			fail(name + " is not a usable number")
		}
		return f, true
	}
	now := float64(testEpoch.Unix())
	skew := clockSkew.Seconds()
	if exp, ok := seconds("exp"); !ok || exp < now-skew {
		fail("exp is missing or past")
	}
	for _, name := range []string{"nbf", "iat"} {
		// jwx drops fractions of a second, so up to one more is accepted.
		if v, ok := seconds(name); ok && v >= now+skew+1 {
			fail(name + " is in the future")
		}
	}
}
