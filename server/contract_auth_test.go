package main

import (
	"net/url"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

func TestRegisterCreatesUser(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	email := uniqueEmail()

	r, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(email), Password: testPassword})
	require.NoError(t, err)
	require.Equal(t, 201, r.StatusCode(), "%s", r.Body)
	require.Positive(t, r.JSON201.Id)
	require.Equal(t, email, string(r.JSON201.Email))

	other := newUser(t, s)
	require.NotEqual(t, r.JSON201.Id, other.ID, "two users share an id")
}

func TestRegisterRejectsTakenEmailInAnyCase(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	local, domain, _ := strings.Cut(u.Email, "@")

	// A group, so that the check below runs after every parallel attempt.
	t.Run("attempts", func(t *testing.T) {
		for name, email := range map[string]string{
			"same":       u.Email,
			"upper case": strings.ToUpper(u.Email),
			"mixed case": strings.ToUpper(local[:1]) + local[1:] + "@" + strings.ToUpper(domain),
		} {
			t.Run(name, func(t *testing.T) {
				r, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(email), Password: "another-password"})
				require.NoError(t, err)
				require.Equal(t, 400, r.StatusCode(), "%s", r.Body)
				require.Equal(t, 400, r.ApplicationproblemJSON400.Status)
			})
		}
	})
	// The first password still works and the second does not: nothing was overwritten.
	login(t, s, u.Email, u.Password)
	r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: u.Email, Password: "another-password"})
	require.NoError(t, err)
	require.Equal(t, 401, r.StatusCode(), "%s", r.Body)
}

func TestRegisterListsInvalidFields(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	cases := []struct {
		name, email, password string
		wantFields            []string
	}{
		{"invalid email", "not-an-email", testPassword, []string{"body.email"}},
		{"email without local part", "@example.com", testPassword, []string{"body.email"}},
		{"password of 7", uniqueEmail(), "1234567", []string{"body.password"}},
		{"password of 129", uniqueEmail(), strings.Repeat("p", 129), []string{"body.password"}},
		{"both", "nobody", "short", []string{"body.email", "body.password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Raw JSON: the typed client refuses to send an invalid email.
			r := s.do(t, "POST", "/register/", ctJSON, jsonBody(`{"email":%q,"password":%q}`, tc.email, tc.password), "")
			require.Equal(t, 422, r.Status, "%s", r.Body)
			p := problemOf(t, r.Body)
			require.ElementsMatch(t, tc.wantFields, fieldsOf(&p))
		})
	}
	t.Run("boundaries accepted", func(t *testing.T) {
		for _, password := range []string{"12345678", strings.Repeat("p", 128)} {
			r, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(uniqueEmail()), Password: password})
			require.NoError(t, err)
			require.Equal(t, 201, r.StatusCode(), "password of %d: %s", len(password), r.Body)
		}
	})
}

func TestTokenIssuesBearerToken(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"JWT_TTL": "5m"}, nil)
	u := newUser(t, s)
	grant := client.TokenRequestGrantTypePassword

	for name, username := range map[string]string{"as registered": u.Email, "other letter case": strings.ToUpper(u.Email)} {
		t.Run(name, func(t *testing.T) {
			r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{GrantType: grant, Username: username, Password: u.Password})
			require.NoError(t, err)
			require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
			require.Equal(t, "no-store", r.HTTPResponse.Header.Get("Cache-Control"))
			require.Equal(t, client.TokenTokenTypeBearer, r.JSON200.TokenType)
			require.Equal(t, 300, r.JSON200.ExpiresIn, "JWT_TTL=5m")
			require.NotEmpty(t, r.JSON200.AccessToken)

			// The token is what authenticates the user afterwards.
			list, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, nil, bearer(r.JSON200.AccessToken))
			require.NoError(t, err)
			require.Equal(t, 200, list.StatusCode(), "%s", list.Body)
		})
	}
}

func TestTokenDefaultLifetimeIs30Minutes(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: u.Email, Password: u.Password})
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, 1800, r.JSON200.ExpiresIn)
}

// TestTokenDoesNotRevealWhetherEmailExists: a wrong password and an unknown
// email get the same answer, apart from the request id.
func TestTokenDoesNotRevealWhetherEmailExists(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)

	answer := func(username, password string) (client.Problem, *client.CreateTokenResponse) {
		r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: username, Password: password})
		require.NoError(t, err)
		require.Equal(t, 401, r.StatusCode(), "%s", r.Body)
		require.Equal(t, "Bearer", r.HTTPResponse.Header.Get("WWW-Authenticate"))
		p := *r.ApplicationproblemJSON401
		require.NotNil(t, p.RequestId)
		p.RequestId = nil
		return p, r
	}
	wrongPassword, r1 := answer(u.Email, "wrong-password")
	unknownEmail, r2 := answer(uniqueEmail(), u.Password)
	require.Equal(t, wrongPassword, unknownEmail)
	for _, h := range []string{"Content-Type", "WWW-Authenticate", "Cache-Control"} {
		require.Equal(t, r1.HTTPResponse.Header.Get(h), r2.HTTPResponse.Header.Get(h), h)
	}
}

func TestTokenRejectsNonFormBodies(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	form := url.Values{"username": {u.Email}, "password": {u.Password}}.Encode()
	cases := []struct {
		name, ctype, body string
		wantFields        []string
	}{
		{"JSON body", ctJSON, `{"username":"` + u.Email + `","password":"` + u.Password + `"}`, []string{"body"}},
		{"missing password", ctForm, url.Values{"username": {u.Email}}.Encode(), []string{"body.password"}},
		{"missing both", ctForm, "", []string{"body"}},
		{"form as text/plain", "text/plain", form, []string{"body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Client.CreateTokenWithBodyWithResponse(t.Context(), tc.ctype, strings.NewReader(tc.body))
			require.NoError(t, err)
			require.Equal(t, 422, r.StatusCode(), "%s", r.Body)
			require.ElementsMatch(t, tc.wantFields, fieldsOf(r.ApplicationproblemJSON422))
		})
	}
}

// An email with an invisible character is a 422 naming the field, at
// register and at login, and never a second account beside the plain one.
func TestEmailsWithInvisibleCharactersAreRefused(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	local, domain, _ := strings.Cut(u.Email, "@")

	for name, email := range map[string]string{
		"zero-width space U+200B":       local + "\u200b@" + domain,
		"right-to-left override U+202E": "\u202e" + u.Email,
		"byte order mark U+FEFF":        "\ufeff" + u.Email,
	} {
		t.Run(name, func(t *testing.T) {
			reg, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(email), Password: testPassword})
			require.NoError(t, err)
			require.Equal(t, 422, reg.StatusCode(), "%s", reg.Body)
			require.Equal(t, []string{"body.email"}, fieldsOf(reg.ApplicationproblemJSON422))

			tok, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: email, Password: u.Password})
			require.NoError(t, err)
			require.Equal(t, 422, tok.StatusCode(), "%s", tok.Body)
			require.Equal(t, []string{"body.username"}, fieldsOf(tok.ApplicationproblemJSON422))
		})
	}
}

// Emails are NFKC-normalised: a full-width spelling registers as, and logs
// in to, the account of the plain one.
func TestFullWidthEmailIsThePlainOne(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	fullWidth := func(ascii string) string {
		return strings.Map(func(r rune) rune {
			if r > ' ' && r < 0x7f {
				return r - '!' + '！' // the full-width forms follow ASCII's order
			}
			return r
		}, ascii)
	}

	tok, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: fullWidth(strings.ToUpper(u.Email)), Password: u.Password})
	require.NoError(t, err)
	require.Equal(t, 200, tok.StatusCode(), "%s", tok.Body)
	list, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, nil, bearer(tok.JSON200.AccessToken))
	require.NoError(t, err)
	require.Equal(t, 200, list.StatusCode(), "the full-width login is the same user: %s", list.Body)

	local, domain, _ := strings.Cut(u.Email, "@")
	taken, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(fullWidth(local) + "@" + domain), Password: testPassword})
	require.NoError(t, err)
	require.Equal(t, 400, taken.StatusCode(), "%s", taken.Body)

	plain := uniqueEmail()
	local, domain, _ = strings.Cut(plain, "@")
	created, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(fullWidth(local) + "@" + domain), Password: testPassword})
	require.NoError(t, err)
	require.Equal(t, 201, created.StatusCode(), "%s", created.Body)
	require.Equal(t, plain, string(created.JSON201.Email), "stored and answered normalised")
	login(t, s, plain, testPassword)
}
