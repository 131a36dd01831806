package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/kraken"
	"github.com/opencalico/opencalico/store"
)

// testAuth stands in for the OAuth middleware: "Bearer <user id>/<client id>" names the
// caller. The real middleware is tested in package oauth.
func testAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, client, ok := strings.Cut(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "/")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, errorResponse{Errors: []ErrorItem{{Cause: "unauthorized", Message: "no token"}}})
			return
		}
		next.ServeHTTP(w, r.WithContext(oauth.NewContext(r.Context(), &oauth.Principal{UserID: user, ClientID: client})))
	})
}

type v2World struct {
	srv   *Server
	st    *store.Store
	doc   *openapi3.T
	alice *opencalico.User
	bob   *opencalico.User
	conns map[string]*opencalico.Connection // by name
	txns  int                               // alice's transactions
}

var tv0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newV2World(t *testing.T) *v2World {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := &v2World{st: st, doc: loadDocument(t), conns: map[string]*opencalico.Connection{}}
	w.alice, w.bob = &opencalico.User{Email: "alice@example.com"}, &opencalico.User{Email: "bob@example.com"}
	for _, u := range []*opencalico.User{w.alice, w.bob} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	add := func(name string, user *opencalico.User, p opencalico.ProviderID) *opencalico.Connection {
		c := &opencalico.Connection{UserID: user.ID, ProviderID: p, DisplayLabel: name, Type: opencalico.AuthAPIKey, Fingerprint: name}
		if err := st.CreateConnection(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		w.conns[name] = c
		return c
	}
	d := decimal.RequireFromString
	bin, kr, bobs := add("alice-binance", w.alice, "binance"), add("alice-kraken", w.alice, "kraken"), add("bob-binance", w.bob, "binance")
	var txns []*opencalico.Transaction
	for i := range 120 {
		c := bin
		if i%3 == 0 {
			c = kr
		}
		ts := tv0.Add(time.Duration(i/2) * time.Hour) // pairs share a timestamp: ties are ordered by id
		tx := &opencalico.Transaction{ConnectionID: c.ID, ExternalID: fmt.Sprint("e", i), Timestamp: ts, Status: opencalico.TxConfirmed,
			Type: opencalico.TypeInputOutput, Categorization: opencalico.Categorization{Category: opencalico.CategoryTrade, Subcategory: "buy"},
			Inputs: []opencalico.Leg{{AssetSymbol: "USDT", Amount: d("100")}}, Outputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: d("0.001")}},
			Fees: []opencalico.Fee{{AssetSymbol: "BNB", Amount: d("0.0001"), Kind: opencalico.FeeTrading}}}
		if i%10 == 0 {
			tx.Type, tx.Categorization = opencalico.TypeReceive, opencalico.Categorization{Category: opencalico.CategoryDeposit}
			tx.Inputs, tx.Fees, tx.Outputs, tx.FromAddress = nil, nil, []opencalico.Leg{{AssetSymbol: "ETH", Amount: d("1.5")}}, "0xabc"
		}
		txns = append(txns, tx)
	}
	txns = append(txns, &opencalico.Transaction{ConnectionID: bobs.ID, ExternalID: "b1", Timestamp: tv0, Status: opencalico.TxConfirmed,
		Type: opencalico.TypeReceive, Categorization: opencalico.Categorization{Category: opencalico.CategoryDeposit},
		Outputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: d("9")}}, FromAddress: "x"})
	if _, err := st.UpsertTransactions(ctx, txns); err != nil {
		t.Fatal(err)
	}
	w.txns = 120
	for _, c := range []*opencalico.Connection{bin, kr} {
		if err := st.ReplacePositions(ctx, c.ID, []opencalico.Position{
			{AssetSymbol: "BTC", Quantity: d("0.5"), Available: d("0.5"), Locked: decimal.Zero, Staked: decimal.Zero},
			{AssetSymbol: "ETH", Quantity: d("2"), Available: d("1"), Locked: decimal.Zero, Staked: d("1")},
		}); err != nil {
			t.Fatal(err)
		}
	}
	failed := opencalico.StatusReauthRequired
	if _, err := st.UpdateConnection(ctx, kr.ID, store.ConnectionUpdate{Status: &failed,
		StatusDetail: &opencalico.StatusDetail{Cause: opencalico.EReauthRequired, Message: "The key was revoked."}}); err != nil {
		t.Fatal(err)
	}
	w.srv = NewServer(DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), &fakeDB{current: true}, nil)
	w.srv.MountV2(V2{Store: st, Authenticate: testAuth, CursorKey: []byte("test cursor key, 32 bytes long!"),
		Catalog: w.srvCatalog()})
	return w
}

func (w *v2World) srvCatalog() *provider.Registry {
	return provider.NewRegistry(binance.New(binance.Options{}), kraken.New(kraken.Options{}))
}

// get calls the API as user (alice or bob) and decodes the body; component, when set, is the
// schema the body must match.
func (w *v2World) get(t *testing.T, user *opencalico.User, path string, header http.Header, component string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+user.ID+"/cli_partner")
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	validateExchange(t, w.doc, req, nil, rec)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: %q", path, rec.Body.String())
	}
	if rec.Code == http.StatusOK && component != "" {
		checkSchema(t, w.doc, component, body)
		if v := rec.Header().Get("Calico-Version"); v != "2.0" && v != "2.1" {
			t.Errorf("GET %s: Calico-Version %q", path, v)
		}
	} else if rec.Code != http.StatusOK {
		checkSchema(t, w.doc, "CalicoErrorResponse", body)
	}
	return rec.Code, body
}

func errorCause(body map[string]any) string {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].(map[string]any)["cause"].(string)
}

// walk pages through a list, returning the ids in order and failing on any repeat.
func (w *v2World) walk(t *testing.T, user *opencalico.User, path, key string, component string) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	next := path
	for pages := 0; ; pages++ {
		status, body := w.get(t, user, next, nil, component)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", next, status, body)
		}
		for _, item := range body["data"].(map[string]any)[key].([]any) {
			m := item.(map[string]any)
			id, _ := m["id"].(string)
			if id == "" {
				id = m["connection_id"].(string) + "/" + m["asset_symbol"].(string)
			}
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		page := body["page"].(map[string]any)
		if !page["has_more"].(bool) {
			if page["next_cursor"] != nil {
				t.Fatal("last page has a next_cursor")
			}
			return ids
		}
		u, _ := url.Parse(path)
		q := u.Query()
		q.Set("cursor", page["next_cursor"].(string))
		u.RawQuery = q.Encode()
		next = u.String()
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
	}
}

func TestV2Transactions(t *testing.T) {
	w := newV2World(t)
	desc := w.walk(t, w.alice, "/accounts/v2/transactions?limit=7", "transactions", "GetTransactionsResponse")
	asc := w.walk(t, w.alice, "/accounts/v2/transactions?limit=9&order=asc", "transactions", "GetTransactionsResponse")
	if len(desc) != w.txns || len(asc) != w.txns {
		t.Fatalf("%d and %d transactions, want %d", len(desc), len(asc), w.txns)
	}
	for i := range desc {
		if desc[i] != asc[len(asc)-1-i] {
			t.Fatalf("desc and asc are not each other's reverse at %d", i)
		}
	}
	status, body := w.get(t, w.alice, "/accounts/v2/transactions?limit=100", nil, "GetTransactionsResponse")
	if status != 200 || errorCause(body) != "reauth_required" {
		t.Fatalf("the revoked Kraken connection is not named in errors[]: %v", body["errors"])
	}
	count := func(path string) int {
		t.Helper()
		return len(w.walk(t, w.alice, path, "transactions", "GetTransactionsResponse"))
	}
	filters := map[string]int{
		"?types=receive":                                12,
		"?categories=trade":                             108,
		"?asset_symbols=ETH":                            12,
		"?asset_symbols=BNB,ETH":                        120,
		"?provider_ids=kraken":                          40,
		"?connection_ids=" + w.conns["alice-kraken"].ID: 40,
		"?start_time=2025-01-01T10:00:00Z&end_time=2025-01-01T20:00:00Z": 20,
		"?start_time=" + fmt.Sprint(tv0.Add(10*time.Hour).UnixMilli()):   100,
		"?connection_ids=" + w.conns["bob-binance"].ID:                   0, // not alice's: nothing, not an error
	}
	for q, want := range filters {
		if got := count("/accounts/v2/transactions" + q); got != want {
			t.Errorf("%s: %d transactions, want %d", q, got, want)
		}
	}
	if n := len(w.walk(t, w.bob, "/accounts/v2/transactions", "transactions", "GetTransactionsResponse")); n != 1 {
		t.Errorf("bob sees %d transactions", n)
	}

	// A cursor from one request is refused with other filters, for another user, or tampered.
	_, first := w.get(t, w.alice, "/accounts/v2/transactions?limit=5&asset_symbols=BTC", nil, "")
	cursor := first["page"].(map[string]any)["next_cursor"].(string)
	bad := map[string]struct {
		user *opencalico.User
		path string
		hdr  http.Header
		want string
	}{
		"limit 0":           {w.alice, "/accounts/v2/transactions?limit=0", nil, "bad_request"},
		"limit 101":         {w.alice, "/accounts/v2/transactions?limit=101", nil, "bad_request"},
		"limit -1":          {w.alice, "/accounts/v2/transactions?limit=-1", nil, "bad_request"},
		"limit x":           {w.alice, "/accounts/v2/transactions?limit=x", nil, "bad_request"},
		"unknown type":      {w.alice, "/accounts/v2/transactions?types=swap", nil, "bad_request"},
		"unknown category":  {w.alice, "/accounts/v2/transactions?categories=shopping", nil, "bad_request"},
		"bad order":         {w.alice, "/accounts/v2/transactions?order=up", nil, "bad_request"},
		"bad time":          {w.alice, "/accounts/v2/transactions?start_time=yesterday", nil, "bad_request"},
		"start after end":   {w.alice, "/accounts/v2/transactions?start_time=2025-02-01T00:00:00Z&end_time=2025-01-01T00:00:00Z", nil, "bad_request"},
		"bad currency":      {w.alice, "/accounts/v2/transactions?currency=dollars", nil, "bad_request"},
		"unknown version":   {w.alice, "/accounts/v2/transactions", http.Header{"Calico-Version": {"3.0"}}, "bad_request"},
		"changed filter":    {w.alice, "/accounts/v2/transactions?limit=5&asset_symbols=ETH&cursor=" + cursor, nil, "invalid_cursor"},
		"foreign cursor":    {w.bob, "/accounts/v2/transactions?limit=5&asset_symbols=BTC&cursor=" + cursor, nil, "invalid_cursor"},
		"tampered cursor":   {w.alice, "/accounts/v2/transactions?limit=5&asset_symbols=BTC&cursor=" + cursor[:10] + "A" + cursor[11:], nil, "invalid_cursor"},
		"cursor of another": {w.alice, "/accounts/v2/assets?limit=5&asset_symbols=BTC&cursor=" + cursor, nil, "invalid_cursor"},
	}
	for name, b := range bad {
		status, body := w.get(t, b.user, b.path, b.hdr, "")
		if status != 400 || errorCause(body) != b.want {
			t.Errorf("%s: %d %v, want 400 %s", name, status, body, b.want)
		}
	}
	same := w.walk(t, w.alice, "/accounts/v2/transactions?limit=5&asset_symbols=BTC", "transactions", "")
	if len(same) != 108 {
		t.Errorf("BTC transactions: %d", len(same))
	}
}

func TestV2ProvidersAndVersions(t *testing.T) {
	w := newV2World(t)
	status, body := w.get(t, w.alice, "/accounts/v2/providers/supported", nil, "SupportedProvidersResponse")
	providers := body["data"].(map[string]any)["providers"].([]any)
	if status != 200 || len(providers) != 2 {
		t.Fatalf("supported: %d %v", status, body)
	}
	checkSchema(t, w.doc, "ProviderMetadataV2.1", providers[0])
	_, body = w.get(t, w.alice, "/accounts/v2/providers/supported", http.Header{"Calico-Version": {"2.0"}}, "SupportedProvidersResponse")
	old := body["data"].(map[string]any)["providers"].([]any)[0].(map[string]any)
	if _, has := old["auth_metadata"]; has {
		t.Error("2.0 answers carry the 2.1 fields")
	}
	checkSchema(t, w.doc, "ProviderMetadata", old)

	status, body = w.get(t, w.alice, "/accounts/v2/providers", nil, "ListProvidersResponse")
	conns := body["data"].(map[string]any)["providers"].([]any)
	if status != 200 || len(conns) != 2 {
		t.Fatalf("alice's providers: %v", body)
	}
	for _, c := range conns {
		checkSchema(t, w.doc, "ConnectedProvidersMetadataV2.1", c)
		if strings.HasPrefix(c.(map[string]any)["display_label"].(string), "bob") {
			t.Fatal("alice sees bob's connection")
		}
	}
	req := httptest.NewRequest("GET", "/accounts/v2/providers", nil)
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("no token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestV2Assets(t *testing.T) {
	w := newV2World(t)
	ids := w.walk(t, w.alice, "/accounts/v2/assets?limit=1", "assets", "GetAssetsResponse")
	if len(ids) != 4 {
		t.Fatalf("alice's positions: %v", ids)
	}
	_, body := w.get(t, w.alice, "/accounts/v2/assets?group_by=asset", nil, "GetAssetsResponse")
	assets := body["data"].(map[string]any)["assets"].([]any)
	if len(assets) != 2 {
		t.Fatalf("grouped: %v", assets)
	}
	eth := assets[1].(map[string]any)
	if eth["asset_symbol"] != "ETH" || eth["quantity"] != "4" || eth["staked"] != "2" || len(eth["sources"].([]any)) != 2 || eth["value"] != nil {
		t.Fatalf("grouped ETH: %v", eth)
	}
	_, body = w.get(t, w.alice, "/accounts/v2/assets?asset_symbols=BTC&provider_ids=binance", nil, "GetAssetsResponse")
	if n := len(body["data"].(map[string]any)["assets"].([]any)); n != 1 {
		t.Fatalf("filtered assets: %d", n)
	}
	if status, body := w.get(t, w.alice, "/accounts/v2/assets?group_by=chain", nil, ""); status != 400 || errorCause(body) != "bad_request" {
		t.Fatalf("group_by=chain: %d %v", status, body)
	}
	_, body = w.get(t, w.bob, "/accounts/v2/assets", nil, "GetAssetsResponse")
	if n := len(body["data"].(map[string]any)["assets"].([]any)); n != 0 {
		t.Fatalf("bob sees %d positions", n)
	}
}

func TestV2ChangesFeed(t *testing.T) {
	w := newV2World(t)
	ctx := context.Background()
	feed := func(cursor string) (added, modified, removed []any, next string) {
		t.Helper()
		path := "/accounts/v2/transactions/sync?limit=50"
		for {
			if cursor != "" {
				path = "/accounts/v2/transactions/sync?limit=50&cursor=" + cursor
			}
			status, body := w.get(t, w.alice, path, nil, "TransactionsSyncResponse")
			if status != 200 {
				t.Fatalf("feed: %d %v", status, body)
			}
			d := body["data"].(map[string]any)
			added = append(added, d["added"].([]any)...)
			modified = append(modified, d["modified"].([]any)...)
			removed = append(removed, d["removed"].([]any)...)
			cursor = d["next_cursor"].(string)
			if !d["has_more"].(bool) {
				return added, modified, removed, cursor
			}
		}
	}
	added, modified, removed, cursor := feed("")
	if len(added) != w.txns || len(modified)+len(removed) != 0 {
		t.Fatalf("first read: %d added, %d modified, %d removed", len(added), len(modified), len(removed))
	}
	if a, m, r, _ := feed(cursor); len(a)+len(m)+len(r) != 0 {
		t.Fatalf("nothing changed but the feed has %d/%d/%d", len(a), len(m), len(r))
	}
	if err := w.st.DeleteConnection(ctx, w.alice.ID, w.conns["alice-kraken"].ID); err != nil {
		t.Fatal(err)
	}
	_, _, removed, _ = feed(cursor)
	if len(removed) != 40 {
		t.Fatalf("%d removed after deleting a 40-transaction connection", len(removed))
	}
	if status, body := w.get(t, w.bob, "/accounts/v2/transactions/sync?cursor="+cursor, nil, ""); status != 400 || errorCause(body) != "invalid_cursor" {
		t.Fatalf("bob with alice's feed cursor: %d %v", status, body)
	}
}

func decodeBody(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestV2RateLimitHeaders(t *testing.T) {
	w := newV2World(t)
	w.srv = NewServer(DefaultConfig(), w.srv.log, &fakeDB{current: true}, nil)
	w.srv.MountV2(V2{Store: w.st, Authenticate: testAuth, CursorKey: []byte("k"), Catalog: w.srvCatalog(), RequestsPerMinute: 2})
	for i := range 3 {
		req := httptest.NewRequest("GET", "/accounts/v2/providers", nil)
		req.Header.Set("Authorization", "Bearer "+w.alice.ID+"/cli")
		rec := httptest.NewRecorder()
		w.srv.ServeHTTP(rec, req)
		if rec.Header().Get("RateLimit-Limit") != "2" || rec.Header().Get("RateLimit-Reset") == "" {
			t.Fatalf("request %d: headers %v", i, rec.Header())
		}
		if i < 2 && rec.Code != 200 || i == 2 && (rec.Code != 429 || rec.Header().Get("Retry-After") == "") {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
}
