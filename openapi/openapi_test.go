package openapi

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"github.com/opencalico/opencalico"
)

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return doc
}

// TestValidate validates the whole document with kin-openapi. Validate switches itself to the
// OpenAPI 3.1 rules (JSON Schema 2020-12: type arrays, const, webhooks) because the document
// says 3.1.0; it also checks every `example` and media-type `examples` against its schema.
func TestValidate(t *testing.T) {
	doc := loadDoc(t)
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx, openapi3.EnableMultiError(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(doc.Webhooks) == 0 {
		t.Fatal("no webhooks loaded")
	}
}

// The reference's schema list: these names must exist exactly.
var referenceSchemas = []string{
	"CalicoErrorResponse", "RefreshResponse", "AddProvidersRequest", "AddProvidersResponse",
	"AddProvidersData", "ListProvidersResponse", "ListProvidersData", "ProviderMetadata",
	"DeleteProvidersRequest", "DeleteProvidersResponse", "DeleteProvidersData",
	"ProviderMetadataV2.1", "ConnectedProvidersMetadataV2.1", "GetAssetsResponse", "GetAssetsData",
	"AssetPosition", "GetTransactionsResponse", "GetTransactionsData", "TransactionCategorization",
	"TransactionType", "FeeItem", "FeeObject", "CurrencyValue", "CryptoSourceCredentialAuthType",
	"RefreshResponseData", "IntegrationResponse", "IntegrationData", "AuthMetaData", "PageData",
	"APIConnection", "WalletConnection", "OAuth2Connection", "ErrorItem", "ProviderId",
	"GetConsentURLForThirdPartyResponse",
}

// The union members whose reference names contain spaces: component name → title.
var referenceTitles = map[string]string{
	"TransactionsData":               "Transactions data",
	"InputOnlyTransactions":          "Input only transactions",
	"SendTransactionData":            "Send transaction data",
	"ReceiveTransactionData":         "Receive transaction data",
	"OutputOnlyTransactionData":      "Output only transaction data",
	"TransactionsWithInputAndOutput": "Transactions with input and output",
	"UncategorizedTransactionData":   "Uncategorized transaction data",
}

func TestReferenceSchemaNames(t *testing.T) {
	doc := loadDoc(t)
	schemas := doc.Components.Schemas
	for _, name := range referenceSchemas {
		if s := schemas[name]; s == nil || s.Value == nil {
			t.Errorf("component schema %q is missing", name)
		}
	}
	for name, title := range referenceTitles {
		s := schemas[name]
		if s == nil || s.Value == nil {
			t.Errorf("component schema %q is missing", name)
			continue
		}
		if s.Value.Title != title {
			t.Errorf("%s: title = %q, want %q", name, s.Value.Title, title)
		}
	}
	for _, name := range []string{"Leg", "ChangesFeed", "RefreshStatus", "ErrorCause"} {
		if schemas[name] == nil {
			t.Errorf("component schema %q is missing", name)
		}
	}

	// Transactions data is a oneOf over the six members, discriminated by type.
	td := schemas["TransactionsData"].Value
	if td.Discriminator == nil || td.Discriminator.PropertyName != "type" {
		t.Errorf("TransactionsData: discriminator = %+v, want propertyName type", td.Discriminator)
	}
	var members []string
	for _, m := range td.OneOf {
		members = append(members, strings.TrimPrefix(m.Ref, "#/components/schemas/"))
	}
	for name := range referenceTitles {
		if name != "TransactionsData" && !slices.Contains(members, name) {
			t.Errorf("TransactionsData.oneOf lacks %s (has %v)", name, members)
		}
	}
	tt := enumStrings(schemas["TransactionType"].Value)
	if want := []string{"send", "receive", "input_only", "output_only", "input_output", "uncategorized"}; !slices.Equal(tt, want) {
		t.Errorf("TransactionType enum = %v, want %v", tt, want)
	}
	if got, want := enumStrings(schemas["CryptoSourceCredentialAuthType"].Value), []string{"api_key", "wallet", "oauth2"}; !slices.Equal(got, want) {
		t.Errorf("CryptoSourceCredentialAuthType enum = %v, want %v", got, want)
	}
}

func enumStrings(s *openapi3.Schema) []string {
	var out []string
	for _, e := range s.Enum {
		if v, ok := e.(string); ok {
			out = append(out, v)
		}
	}
	return out
}

// The cause values of API.md, in its order.
var apiCauses = []string{
	"bad_request", "unauthorized", "forbidden", "not_found", "unsupported_provider",
	"unsupported_connection_type", "invalid_credentials", "invalid_address", "already_connected",
	"invalid_cursor", "invalid_state", "rate_limited", "provider_unavailable", "provider_error",
	"reauth_required", "internal_error",
}

func TestErrorCauses(t *testing.T) {
	doc := loadDoc(t)
	got := enumStrings(doc.Components.Schemas["ErrorCause"].Value)
	if !slices.Equal(got, apiCauses) {
		t.Errorf("ErrorCause enum = %v, want %v", got, apiCauses)
	}
	// The domain's error codes and the document must name the same causes.
	var codes []string
	for _, c := range opencalico.ErrorCodes {
		codes = append(codes, string(c))
	}
	if !slices.Equal(codes, got) {
		t.Errorf("opencalico.ErrorCodes = %v, document ErrorCause = %v", codes, got)
	}
	item := doc.Components.Schemas["ErrorItem"].Value
	if ref := item.Properties["cause"]; ref == nil || ref.Ref != "#/components/schemas/ErrorCause" {
		t.Errorf("ErrorItem.cause does not reference ErrorCause")
	}
	if !slices.Contains(doc.Components.Schemas["CalicoErrorResponse"].Value.Required, "errors") {
		t.Errorf("CalicoErrorResponse does not require errors")
	}
}

// Every path and method API.md names.
var apiOperations = []struct{ method, path string }{
	{"POST", "/accounts/v2/oauth/callback/{provider_id}"},
	{"POST", "/accounts/v2/providers"},
	{"GET", "/accounts/v2/providers"},
	{"DELETE", "/accounts/v2/providers"},
	{"GET", "/accounts/v2/providers/supported"},
	{"GET", "/accounts/v2/assets"},
	{"POST", "/accounts/v2/assets/refresh"},
	{"GET", "/accounts/v2/refresh/{refresh_id}"},
	{"GET", "/accounts/v2/transactions"},
	{"POST", "/accounts/v2/transactions/refresh"},
	{"GET", "/accounts/v2/transactions/sync"},
	{"GET", "/platform/v1/oauth/callback/{crypto_provider}"},
	{"POST", "/platform/v1/provider"},
	{"GET", "/platform/v1/provider"},
	{"DELETE", "/platform/v1/provider"},
	{"GET", "/platform/v1/assets"},
	{"POST", "/platform/v1/assets/refresh"},
	{"GET", "/platform/v1/transactions"},
	{"POST", "/platform/v1/transactions/refresh"},
	{"GET", "/enterprise/v1/users"},
	{"GET", "/enterprise/v1/users/{user_id}"},
	{"GET", "/enterprise/v1/users/{user_id}/assets"},
	{"GET", "/enterprise/v1/users/{user_id}/transactions"},
	{"POST", "/enterprise/v1/users/{user_id}/deactivate"},
	{"GET", "/enterprise/v1/accounts"},
	{"GET", "/enterprise/v1/transactions"},
	{"GET", "/enterprise/v1/stats"},
	{"GET", "/enterprise/v1/providers"},
	{"GET", "/enterprise/v1/providers/supported"},
	{"GET", "/oauth/authorize"},
	{"GET", "/connect"},
	{"POST", "/oauth/token"},
	{"POST", "/oauth/revoke"},
	{"GET", "/.well-known/oauth-authorization-server"},
	{"GET", "/.well-known/jwks.json"},
	{"POST", "/sandbox/users"},
	{"GET", "/sandbox/credentials"},
	{"GET", "/openapi.json"},
	{"GET", "/docs"},
	{"GET", "/healthz"},
	{"GET", "/readyz"},
	{"GET", "/metrics"},
}

func TestPaths(t *testing.T) {
	doc := loadDoc(t)
	for _, tc := range apiOperations {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			item := doc.Paths.Find(tc.path)
			if item == nil {
				t.Fatalf("path %s is missing", tc.path)
			}
			if item.GetOperation(tc.method) == nil {
				t.Fatalf("%s %s is missing", tc.method, tc.path)
			}
		})
	}
	for _, event := range []string{"refresh.completed", "connection.status_changed", "transactions.changed"} {
		item := doc.Webhooks[event]
		if item == nil || item.Post == nil {
			t.Errorf("webhook %s is missing", event)
			continue
		}
		found := false
		for _, p := range item.Post.Parameters {
			if p.Value != nil && p.Value.In == "header" && p.Value.Name == "Calico-Signature" && p.Value.Required {
				found = true
			}
		}
		if !found {
			t.Errorf("webhook %s lacks the required Calico-Signature header", event)
		}
	}
}

// The operations built at the time of the document; all others are planned.
var availableOps = []string{
	"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json", "GET /docs", "GET /docs/style.css",
	"GET /accounts/v2/providers", "POST /accounts/v2/providers", "DELETE /accounts/v2/providers",
	"GET /accounts/v2/providers/supported", "GET /accounts/v2/assets", "POST /accounts/v2/assets/refresh",
	"GET /accounts/v2/refresh/{refresh_id}", "GET /accounts/v2/transactions", "POST /accounts/v2/transactions/refresh",
	"GET /accounts/v2/transactions/sync", "GET /oauth/authorize", "GET /connect", "POST /oauth/token",
	"POST /oauth/revoke", "GET /.well-known/oauth-authorization-server", "GET /.well-known/jwks.json",
	"POST /sandbox/users", "GET /sandbox/credentials", "GET /sandbox/callback",
	"POST /accounts/v2/oauth/callback/{provider_id}",
}

const plannedSentence = "Planned: not served yet; the server answers 404 not_found."

type namedOp struct {
	key string
	op  *openapi3.Operation
}

func allOperations(doc *openapi3.T) []namedOp {
	var ops []namedOp
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, namedOp{method + " " + path, op})
		}
	}
	for name, item := range doc.Webhooks {
		for method, op := range item.Operations() {
			ops = append(ops, namedOp{"webhook " + method + " " + name, op})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })
	return ops
}

func TestOperations(t *testing.T) {
	doc := loadDoc(t)
	tags := map[string]bool{}
	for _, tag := range doc.Tags {
		tags[tag.Name] = true
	}
	ids := map[string]string{}
	var available []string
	for _, o := range allOperations(doc) {
		op := o.op
		if op.OperationID == "" {
			t.Errorf("%s: no operationId", o.key)
		} else if prev, dup := ids[op.OperationID]; dup {
			t.Errorf("%s: operationId %q also used by %s", o.key, op.OperationID, prev)
		}
		ids[op.OperationID] = o.key
		if op.Summary == "" {
			t.Errorf("%s: no summary", o.key)
		}
		if len(op.Tags) == 0 {
			t.Errorf("%s: no tags", o.key)
		}
		for _, tag := range op.Tags {
			if !tags[tag] {
				t.Errorf("%s: tag %q is not declared in the document's tags", o.key, tag)
			}
		}
		status, _ := op.Extensions["x-opencalico-status"].(string)
		switch status {
		case "available":
			available = append(available, o.key)
			if strings.Contains(op.Description, "Planned:") {
				t.Errorf("%s: available but its description says planned", o.key)
			}
		case "planned":
			if !strings.Contains(op.Description, plannedSentence) {
				t.Errorf("%s: planned but its description lacks %q", o.key, plannedSentence)
			}
		default:
			t.Errorf("%s: x-opencalico-status = %q, want available or planned", o.key, status)
		}
		if Status(op) != status && status != "" {
			t.Errorf("%s: Status() = %q, want %q", o.key, Status(op), status)
		}
	}
	want := slices.Clone(availableOps)
	sort.Strings(want)
	sort.Strings(available)
	if !slices.Equal(available, want) {
		t.Errorf("available operations = %v, want %v", available, want)
	}
}

// TestErrorResponses checks the reusable error responses: every status the contract names, each
// with CalicoErrorResponse, and the headers it promises.
func TestErrorResponses(t *testing.T) {
	doc := loadDoc(t)
	want := map[string]struct {
		status  string
		headers []string
	}{
		"BadRequest":           {"400", nil},
		"Unauthorized":         {"401", []string{"WWW-Authenticate"}},
		"Forbidden":            {"403", nil},
		"NotFound":             {"404", nil},
		"Conflict":             {"409", nil},
		"PayloadTooLarge":      {"413", nil},
		"UnsupportedMediaType": {"415", nil},
		"TooManyRequests":      {"429", []string{"Retry-After"}},
		"InternalError":        {"500", nil},
		"ServiceUnavailable":   {"503", nil},
	}
	used := map[string]string{} // response name → status it is used under
	for _, o := range allOperations(doc) {
		if o.op.Responses == nil {
			continue
		}
		for code, r := range o.op.Responses.Map() {
			if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
				if w, known := want[name]; known && w.status != code {
					t.Errorf("%s: %s used under status %s, want %s", o.key, name, code, w.status)
				}
				used[name] = code
			}
		}
	}
	for name, w := range want {
		r := doc.Components.Responses[name]
		if r == nil || r.Value == nil {
			t.Errorf("response %s is missing", name)
			continue
		}
		mt := r.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/CalicoErrorResponse" {
			t.Errorf("response %s: application/json schema is not CalicoErrorResponse", name)
		}
		for _, h := range w.headers {
			if r.Value.Headers[h] == nil {
				t.Errorf("response %s lacks header %s", name, h)
			}
		}
		if _, ok := used[name]; !ok {
			t.Errorf("response %s (%s) is used by no operation", name, w.status)
		}
	}
	for _, name := range []string{"CalicoVersion", "RateLimitLimit", "RateLimitRemaining", "RateLimitReset", "RetryAfter"} {
		if doc.Components.Headers[name] == nil {
			t.Errorf("header %s is missing", name)
		}
	}
	for _, name := range []string{"CalicoVersion", "IdempotencyKey", "Cursor", "Limit"} {
		if doc.Components.Parameters[name] == nil {
			t.Errorf("parameter %s is missing", name)
		}
	}
	for _, name := range []string{"bearerAuth", "enterpriseAuth", "clientBasic"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s is missing", name)
		}
	}
}

var visit2020 = []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()}

// TestExamples validates, with the JSON Schema 2020-12 validator, every example of the document:
// the `examples` arrays of component schemas (which Validate leaves alone), and the examples of
// request bodies, responses and parameters.
func TestExamples(t *testing.T) {
	doc := loadDoc(t)
	count := 0
	check := func(where string, schema *openapi3.SchemaRef, value any) {
		t.Helper()
		count++
		if schema == nil || schema.Value == nil {
			t.Errorf("%s: example without a schema", where)
			return
		}
		if err := schema.Value.VisitJSON(value, visit2020...); err != nil {
			t.Errorf("%s: example does not match its schema: %v", where, err)
		}
	}
	checkContent := func(where string, content openapi3.Content) {
		for mt, m := range content {
			if m.Example != nil {
				check(where+" "+mt+" example", m.Schema, m.Example)
			}
			for name, ex := range m.Examples {
				if ex.Value != nil {
					check(where+" "+mt+" examples."+name, m.Schema, ex.Value.Value)
				}
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		for i, ex := range s.Value.Examples {
			check("schema "+name+" examples["+string(rune('0'+i))+"]", s, ex)
		}
		if s.Value.Example != nil {
			check("schema "+name+" example", s, s.Value.Example)
		}
	}
	for name, r := range doc.Components.Responses {
		checkContent("response "+name, r.Value.Content)
	}
	for _, o := range allOperations(doc) {
		if rb := o.op.RequestBody; rb != nil && rb.Value != nil {
			checkContent(o.key+" request", rb.Value.Content)
		}
		if o.op.Responses != nil {
			for code, r := range o.op.Responses.Map() {
				if r.Ref == "" && r.Value != nil {
					checkContent(o.key+" "+code, r.Value.Content)
				}
			}
		}
		for _, p := range o.op.Parameters {
			if p.Value != nil && p.Value.Example != nil {
				check(o.key+" parameter "+p.Value.Name, p.Value.Schema, p.Value.Example)
			}
		}
	}
	if count < 30 {
		t.Errorf("only %d examples checked; the main schemas and responses should carry examples", count)
	}
	for _, name := range []string{"AssetPosition", "TransactionsWithInputAndOutput", "ConnectedProvidersMetadataV2.1", "CurrencyValue", "FeeObject", "GetTransactionsResponse", "GetAssetsResponse"} {
		if len(doc.Components.Schemas[name].Value.Examples) == 0 {
			t.Errorf("schema %s has no example", name)
		}
	}
}

// TestSchemasReject makes sure the schemas are strict where the contract is: the validator used
// by TestExamples does reject what the contract forbids.
func TestSchemasReject(t *testing.T) {
	doc := loadDoc(t)
	s := func(name string) *openapi3.Schema { return doc.Components.Schemas[name].Value }
	good := func(name, js string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatal(err)
		}
		if err := s(name).VisitJSON(v, visit2020...); err != nil {
			t.Errorf("%s rejects %s: %v", name, js, err)
		}
	}
	bad := func(name, js string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatal(err)
		}
		if err := s(name).VisitJSON(v, visit2020...); err == nil {
			t.Errorf("%s accepts %s", name, js)
		}
	}
	good("CurrencyValue", `null`)
	good("CurrencyValue", `{"amount":"1234.56","currency":"USD"}`)
	bad("CurrencyValue", `{"amount":1234.56,"currency":"USD"}`)
	bad("CurrencyValue", `{"amount":"1e3","currency":"USD"}`)
	bad("CurrencyValue", `{"amount":"-1","currency":"USD"}`)
	good("PageData", `{"next_cursor":null,"has_more":false,"limit":30}`)
	bad("PageData", `{"has_more":false,"limit":30}`)
	bad("CalicoErrorResponse", `{}`)
	bad("ErrorItem", `{"cause":"no_such_cause"}`)
	good("AddProvidersRequest", `{"provider_id":"bitcoin","connection":{"type":"wallet","address":"bc1q"}}`)
	bad("AddProvidersRequest", `{"provider_id":"bitcoin","connection":{"type":"wallet"}}`)
	bad("AddProvidersRequest", `{"provider_id":"Bit Coin","connection":{"type":"wallet","address":"bc1q"}}`)
	good("DeleteProvidersRequest", `{"provider_ids":["coinbase"]}`)
	bad("DeleteProvidersRequest", `{}`)

	base := `"id":"txn_1","connection_id":"c1","provider_id":"bitcoin","categorization":{"category":"transfer"},"status":"confirmed","timestamp":"2026-03-06T12:00:00Z","fees":{"total":null,"items":[]}`
	leg := `{"asset_symbol":"BTC","amount":"0.1"}`
	good("TransactionsData", `{`+base+`,"type":"send","inputs":[`+leg+`],"outputs":[],"to_address":"bc1q"}`)
	bad("TransactionsData", `{`+base+`,"type":"send","inputs":[`+leg+`],"outputs":[`+leg+`],"to_address":"bc1q"}`)
	good("TransactionsData", `{`+base+`,"type":"receive","inputs":[],"outputs":[`+leg+`],"from_address":"bc1q"}`)
	good("TransactionsData", `{`+base+`,"type":"uncategorized","inputs":[`+leg+`],"outputs":[`+leg+`]}`)
	bad("TransactionsData", `{`+base+`,"type":"trade","inputs":[],"outputs":[]}`)
	bad("TransactionsData", `{`+base+`,"type":"input_output","inputs":[{"asset_symbol":"BTC","amount":"-0.1"}],"outputs":[`+leg+`]}`)
}

func TestDocument(t *testing.T) {
	a, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(a, &v); err != nil {
		t.Fatalf("Document is not JSON: %v", err)
	}
	if s, _ := v["openapi"].(string); !strings.HasPrefix(s, "3.1") {
		t.Errorf("openapi = %v", v["openapi"])
	}
	// Key order follows the YAML: "openapi" first, "components" after "paths".
	if !bytes.HasPrefix(a, []byte(`{"openapi":"3.1.0"`)) {
		t.Errorf("document does not start with the openapi field: %.40s", a)
	}
	if bytes.Index(a, []byte(`"paths":`)) > bytes.Index(a, []byte(`"components":`)) {
		t.Errorf("paths after components: key order lost")
	}
	// Copies are independent.
	a[0] = 'X'
	b, _ := Document()
	if b[0] != '{' {
		t.Errorf("Document returned a shared buffer")
	}
	if !bytes.Equal(YAML(), specYAML) {
		t.Errorf("YAML() differs from the embedded document")
	}
}

func TestYAMLToJSON(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{in: "b: 1\na: [x, 2, 2.5, true, null, '3']\n200: {c: ~}\n", want: `{"b":1,"a":["x",2,2.5,true,null,"3"],"200":{"c":null}}`},
		{in: "t: 2026-03-06T12:00:00Z\nu: [string, 'null']\n", want: `{"t":"2026-03-06T12:00:00Z","u":["string","null"]}`},
		{in: "a: &x {k: v}\nb: *x\n", want: `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{in: "a: 1\na: 2\n", err: "duplicate key"},
		{in: "a: &x {k: v}\nb:\n  <<: *x\n", err: "merge keys"},
		{in: "a: .inf\n", err: "no JSON form"},
	}
	for _, tc := range cases {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(tc.in), &root); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		var buf bytes.Buffer
		err := writeJSON(&buf, &root, "$")
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case buf.String() != tc.want:
			t.Errorf("%q: got %s, want %s", tc.in, buf.String(), tc.want)
		}
	}
}

func get(t *testing.T, h http.Handler, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestSpecHandler(t *testing.T) {
	h := Handler()
	resp := get(t, h, "/openapi.json", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var v struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if !strings.HasPrefix(v.OpenAPI, "3.1") {
		t.Errorf("openapi = %q", v.OpenAPI)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") == "" {
		t.Errorf("ETag = %q, Cache-Control = %q", etag, resp.Header.Get("Cache-Control"))
	}
	if want, _ := ETag(); etag != want {
		t.Errorf("ETag = %q, ETag() = %q", etag, want)
	}
	resp = get(t, h, "/openapi.json", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status = %d, want 304", resp.StatusCode)
	}
	// A served document loads and validates like the embedded one.
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Errorf("served document: %v", err)
	}

	rec := httptest.NewRecorder()
	SpecHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/openapi.json", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
		t.Errorf("POST: status = %d, Allow = %q", rec.Code, rec.Header().Get("Allow"))
	}
	if resp := get(t, h, "/elsewhere", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/elsewhere: status = %d", resp.StatusCode)
	}
}

func TestDocsHandler(t *testing.T) {
	h := Handler()
	resp := get(t, h, "/docs", nil)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	page := string(raw)
	text := html.UnescapeString(page)
	doc := loadDoc(t)
	for path := range doc.Paths.Map() {
		if !strings.Contains(text, path) {
			t.Errorf("page does not name path %s", path)
		}
	}
	for name := range doc.Webhooks {
		if !strings.Contains(text, name) {
			t.Errorf("page does not name webhook %s", name)
		}
	}
	for name := range doc.Components.Schemas {
		if !strings.Contains(page, `id="schema-`+name+`"`) {
			t.Errorf("page has no section for schema %s", name)
		}
	}
	for _, want := range []string{
		`href="#schema-ConnectedProvidersMetadataV2.1"`, // schema names link to their section
		`class="badge available"`, `class="badge planned"`,
		`href="docs/style.css"`, "Transactions with input and output", "advanced_trade_fill",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Works under a strict CSP and offline: no script, no inline style, nothing from elsewhere.
	for _, banned := range []string{"<script", "style=", "<style", `src="http`, `href="http://`, `rel="stylesheet" href="http`} {
		if strings.Contains(page, banned) {
			t.Errorf("page contains %q", banned)
		}
	}
	if etag := resp.Header.Get("ETag"); etag == "" {
		t.Error("no ETag")
	} else if r := get(t, h, "/docs", http.Header{"If-None-Match": {etag}}); r.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status = %d", r.StatusCode)
	}

	css := get(t, h, "/docs/style.css", nil)
	body, _ := io.ReadAll(css.Body)
	if css.StatusCode != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || len(body) == 0 {
		t.Errorf("style.css: status %d, Content-Type %q, %d bytes", css.StatusCode, css.Header.Get("Content-Type"), len(body))
	}
	if bytes.Contains(body, []byte("url(http")) || bytes.Contains(body, []byte("@import")) {
		t.Error("style.css loads something from elsewhere")
	}
}

func TestProse(t *testing.T) {
	got := string(prose("A `<b>` and <i>.\n\n- one `x`\n  more\n- two"))
	want := "<p>A <code>&lt;b&gt;</code> and &lt;i&gt;.</p><ul><li>one <code>x</code> more</li><li>two</li></ul>"
	if got != want {
		t.Errorf("prose = %s, want %s", got, want)
	}
}
