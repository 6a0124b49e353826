package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/oasdiff/yaml"
	"github.com/stretchr/testify/require"

	orders "github.com/ordersvc/orders"
	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// chromiumPath is Debian's Chromium, installed by .ci/install-browser.
const chromiumPath = "/usr/bin/chromium"

// TestSwaggerUIInBrowser drives the Swagger UI at /docs/ in headless
// Chromium the way a person would: every operation of openapi.yaml is
// listed, the OAuth2 password flow authorizes, and "Try it out" on
// POST /orders/ creates an order that the API then returns.
//
// Screenshots go to the test's artifact directory (kept with
// `go test -artifacts`), or to docs/ with UPDATE_SCREENSHOTS=1.
func TestSwaggerUIInBrowser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is required for this test (%v); install it with .ci/install-browser", err)
	}
	topo := testamqp.Namespace(t)
	sys := newSystem(t, testdb.New(t), topo, map[string]string{
		"REDIS_KEY_PREFIX": "docs-browser-" + randomSuffix(),
	})
	base := sys.api.URL(process.HTTPAddr)
	email, password := registerUser(t, sys)
	shots := screenshotDir(t)
	b := newBrowser(t, shots)

	// The operations list.
	b.do("open /docs/",
		chromedp.Navigate(base+"/docs/"),
		chromedp.WaitVisible(chromedp.CSS(".opblock .opblock-summary-method")),
	)
	listed := evaluate[[]uiOperation](b, `[...document.querySelectorAll('.opblock')].map(el => ({
		id: el.id,
		method: (el.querySelector('.opblock-summary-method')?.textContent || '').trim(),
		path: el.querySelector('.opblock-summary-path')?.getAttribute('data-path') || '',
	}))`)
	specOps := specOperations(t)
	require.NotEmpty(t, specOps)
	for _, op := range specOps {
		found := slices.ContainsFunc(listed, func(l uiOperation) bool {
			return strings.EqualFold(l.Method, op.Method) && l.Path == op.Path && strings.HasSuffix(l.ID, "-"+op.OperationID)
		})
		require.True(t, found, "Swagger UI does not list %s %s (%s); it lists %+v", op.Method, op.Path, op.OperationID, listed)
	}
	b.saveFullPage("swagger-ui.png")

	// Authorize through the OAuth2 password flow (POST /token/ from the page).
	b.do("authorize",
		chromedp.Click(chromedp.CSS("button.authorize")),
		chromedp.WaitVisible(chromedp.CSS("#oauth_username")),
		chromedp.SendKeys(chromedp.CSS("#oauth_username"), email),
		chromedp.SendKeys(chromedp.CSS("#oauth_password"), password),
		chromedp.Click(chromedp.CSS(".auth-container .auth-btn-wrapper .btn.modal-btn.auth.authorize")),
	)
	outcome := poll[string](b, `(() => {
		const c = document.querySelector('.auth-container');
		if (!c) return '';
		const err = c.querySelector('.errors');
		if (err && err.innerText.trim()) return 'error: ' + err.innerText.trim();
		return [...c.querySelectorAll('button')].some(x => x.textContent.trim() === 'Logout') ? 'authorized' : '';
	})()`)
	require.Equal(t, "authorized", outcome, "the OAuth2 password flow failed in the browser")
	b.do("close the authorization dialog",
		chromedp.Click(chromedp.CSS(".auth-container .btn-done")),
		chromedp.WaitNotPresent(chromedp.CSS(".dialog-ux .modal-ux")),
	)

	// Try it out: POST /orders/ with our own body instead of the example.
	op := `.opblock[id$="-createOrder"]`
	const body = `{"items": [{"product_id": 1001, "quantity": 3, "price": 19.99}, {"product_id": 7, "quantity": 1, "price": 0.5}]}`
	const wantTotal = "60.47"
	b.do("try it out",
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(op+" textarea.body-param__text")),
	)
	// The textarea is a React input: set the value through the native
	// setter and fire "input", or React keeps its own copy of the example.
	setBody := fmt.Sprintf(`(() => {
		const ta = document.querySelector(%q);
		Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(ta, %q);
		ta.dispatchEvent(new Event('input', {bubbles: true}));
		return ta.value;
	})()`, op+" textarea.body-param__text", body)
	require.JSONEq(t, body, evaluate[string](b, setBody))
	b.do("execute",
		chromedp.Click(chromedp.CSS(op+" .btn.execute")),
		chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")),
	)
	status := text(b, op+" .live-responses-table tbody .response-col_status")
	shown := evaluate[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(p => p.textContent)`, op+" .live-responses-table pre"))
	curl := text(b, op+" .curl-command")
	// From the operation's header down to the server's response, without
	// the documented responses below it.
	b.saveRegion("swagger-ui-order-created.png", op+" .opblock-summary, "+op+" .live-responses-table")

	require.Equal(t, "201", strings.TrimSpace(status), "Swagger UI shows %v", shown)
	require.Contains(t, curl, "Authorization: Bearer ", "the request carried the token from the Authorize dialog")
	var created struct {
		ID         uuid.UUID       `json:"id"`
		TotalPrice json.RawMessage `json:"total_price"`
		Status     string          `json:"status"`
	}
	for _, s := range shown {
		if json.Unmarshal([]byte(s), &created) == nil && created.ID != uuid.Nil {
			break
		}
	}
	require.NotEqual(t, uuid.Nil, created.ID, "no order in the response shown: %v", shown)
	require.Equal(t, wantTotal, string(created.TotalPrice), "total_price shown by Swagger UI")
	require.Equal(t, "PENDING", created.Status)

	// The API has the order, for the same user, and the workers process it.
	auth := bearer(t, sys, email, password)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := sys.client.GetOrderWithResponse(context.Background(), created.ID, nil, auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, got.StatusCode(), string(got.Body))
		require.Equal(t, wantTotal, got.JSON200.TotalPrice.String())
		require.Len(t, got.JSON200.Items, 2)
		if got.JSON200.ProcessedAt != nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the order created in Swagger UI was not processed within 30s")
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("rabbitmq management UI", func(t *testing.T) {
		screenshotQueues(t, b, topo.Namespace)
	})
}

// uiOperation is one operation block of the Swagger UI page.
type uiOperation struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	Path   string `json:"path"`
}

type specOperation struct {
	Method, Path, OperationID string
}

// specOperations lists the operations of openapi.yaml, the file the API serves.
func specOperations(t *testing.T) []specOperation {
	t.Helper()
	raw, err := yaml.YAMLToJSON(orders.OpenAPIYAML)
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(raw, &spec))
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	var out []specOperation
	for path, item := range spec.Paths {
		for method, opRaw := range item {
			if !slices.Contains(methods, method) {
				continue // parameters, summary, ...
			}
			var op struct {
				OperationID string `json:"operationId"`
			}
			require.NoError(t, json.Unmarshal(opRaw, &op))
			require.NotEmpty(t, op.OperationID, "%s %s has no operationId", method, path)
			out = append(out, specOperation{Method: method, Path: path, OperationID: op.OperationID})
		}
	}
	return out
}

// registerUser registers a fresh user through the API.
func registerUser(t *testing.T, sys *system) (email, password string) {
	t.Helper()
	email = "docs-" + randomSuffix() + "@example.com"
	password = "correct-horse-battery"
	reg, err := sys.client.RegisterWithResponse(context.Background(), client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: password})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, reg.StatusCode(), string(reg.Body))
	return email, password
}

// bearer logs in through the API and returns a request editor with the token.
func bearer(t *testing.T, sys *system, email, password string) client.RequestEditorFn {
	t.Helper()
	tok, err := sys.client.CreateTokenWithFormdataBodyWithResponse(context.Background(), client.CreateTokenFormdataRequestBody{Username: email, Password: password})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, tok.StatusCode(), string(tok.Body))
	token := tok.JSON200.AccessToken
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// screenshotDir is docs/ with UPDATE_SCREENSHOTS=1, else the test's artifact directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "docs")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.ArtifactDir()
}

// browser is one headless Chromium with one tab.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func newBrowser(t *testing.T, shots string) *browser {
	t.Helper()
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	// Cleanups run last-registered first: the browser exits before
	// t.TempDir removes its profile.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser on the tab's own context now: the first action
	// binds the browser's lifetime to its context, and the steps run on
	// shorter-lived contexts derived from it.
	require.NoError(t, chromedp.Do(tab), "start %s", chromiumPath)
	return &browser{t: t, ctx: tab, shots: shots}
}

// stepTimeout bounds each step, so a selector that never matches fails
// fast with the page's text rather than at the test's deadline.
const stepTimeout = 30 * time.Second

// do runs actions and, when one fails, fails the test with a screenshot
// and the text of the page.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
}

func (b *browser) fail(step string, err error) {
	b.t.Helper()
	// A fresh context: the tab's own may be the one that timed out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 10*time.Second)
	defer cancel()
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if png, shotErr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); shotErr == nil {
		path := filepath.Join(b.t.ArtifactDir(), "failure.png")
		if os.WriteFile(path, png, 0o600) == nil {
			b.t.Logf("screenshot of the failure: %s (kept with go test -artifacts)", path)
		}
	}
	b.t.Fatalf("browser: %s: %v\npage text:\n%s", step, err, page)
}

func evaluate[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

func poll[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(stepTimeout)))
	if err != nil {
		b.fail("wait for "+expr, err)
	}
	return v
}

func text(b *browser, sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return v
}

func (b *browser) saveFullPage(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	b.save(name, png)
}

// saveRegion saves the smallest rectangle holding every element that sel matches.
func (b *browser) saveRegion(name, sel string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSSAll(sel)))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	b.save(name, png)
}

func (b *browser) save(name string, png []byte) {
	b.t.Helper()
	path := filepath.Join(b.shots, name)
	require.NoError(b.t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a screenshot meant to be read
	b.t.Logf("screenshot: %s", path)
}

// managementURL is RabbitMQ's management UI; it exists only where the
// rabbitmq_management plugin is enabled (compose.yaml's image has it).
const managementURL = "http://127.0.0.1:15672/"

// screenshotQueues signs in to the RabbitMQ management UI and takes
// rabbitmq-queues.png of this test's queues. The plugin is optional on the
// development and CI machines, so its absence skips this part only.
func screenshotQueues(t *testing.T, b *browser, namespace string) {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, managementURL+"api/overview", nil)
	require.NoError(t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("RabbitMQ management UI not reachable (%v); enable it with: rabbitmq-plugins enable rabbitmq_management", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("RabbitMQ management API answered %s", resp.Status)
	}
	b.t = t // failures belong to this subtest
	b.do("sign in to the management UI",
		chromedp.Navigate(managementURL),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "guest"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "guest"),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
		// The UI is one page: follow its own tab link (a Navigate to a
		// fragment would wait for a load event that never comes).
		chromedp.Click(chromedp.CSS(`#tabs a[href="#/queues"]`)),
		chromedp.WaitVisible(chromedp.CSS("#queues-name")),
		chromedp.SendKeys(chromedp.CSS("#queues-name"), namespace+kb.Enter),
	)
	// The queue list refreshes by itself; wait until it shows this test's queues.
	n := poll[int](b, fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll('table.list tbody tr')].filter(r => r.innerText.includes(%q));
		return rows.length;
	})()`, namespace))
	require.Positive(t, n)
	b.saveFullPage("rabbitmq-queues.png")
}
