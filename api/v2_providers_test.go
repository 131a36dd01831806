package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/provider/binance"
	"github.com/opencalico/opencalico/provider/kraken"
	binancesim "github.com/opencalico/opencalico/provider/sim/binance"
	"github.com/opencalico/opencalico/secrets"
)

// newProvidersWorld mounts the v2 routes over the real connections service, with Binance
// pointed at its simulator.
func newProvidersWorld(t *testing.T) (*v2World, *recordingSyncs, map[string]string) {
	w := newV2World(t)
	sim := binancesim.New(binancesim.Options{Seed: 5, Trades: 10})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	reg := provider.NewRegistry(binance.New(binance.Options{BaseURL: srv.URL}), kraken.New(kraken.Options{}))
	ring, err := secrets.NewKeyring(secrets.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	syncs := &recordingSyncs{}
	svc, err := connections.New(connections.Config{Store: w.st, Sealer: secrets.NewSealer(ring), Providers: reg, Sync: syncs,
		FingerprintKey: []byte("fingerprint key of at least 32 bytes!!"), Log: w.srv.log})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = NewServer(DefaultConfig(), w.srv.log, &fakeDB{current: true}, nil)
	w.srv.MountV2(V2{Store: w.st, Authenticate: testAuth, CursorKey: []byte("test cursor key, 32 bytes long!"),
		Catalog: reg, Syncs: syncs, Connections: svc})
	return w, syncs, sim.Credentials()[0]
}

func (w *v2World) send(t *testing.T, method string, user *opencalico.User, path, body string, header http.Header, okComponent string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+user.ID+"/cli_partner")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	w.srv.ServeHTTP(rec, req)
	validateExchange(t, w.doc, req, []byte(body), rec)
	var out map[string]any
	if err := decodeBody(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %q", method, path, rec.Body.String())
	}
	if rec.Code < 300 {
		checkSchema(t, w.doc, okComponent, out)
	} else {
		checkSchema(t, w.doc, "CalicoErrorResponse", out)
	}
	return rec, out
}

func TestV2AddAndRemoveProviders(t *testing.T) {
	w, syncs, creds := newProvidersWorld(t)
	ctx := context.Background()
	count := func(u *opencalico.User) int {
		cs, err := w.st.ListConnections(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	good := `{"provider_id":"binance","display_label":"Trading","connection":{"type":"api_key","api_key":"` + creds["api_key"] + `","secret_key":"` + creds["secret_key"] + `"}}`
	before := count(w.bob)
	for name, b := range map[string]struct {
		body   string
		status int
		cause  string
	}{
		"unknown provider":   {`{"provider_id":"mtgox","connection":{"type":"api_key","api_key":"a","secret_key":"b"}}`, 400, "unsupported_provider"},
		"unsupported type":   {`{"provider_id":"binance","connection":{"type":"wallet","address":"bc1q"}}`, 400, "unsupported_connection_type"},
		"unknown type":       {`{"provider_id":"binance","connection":{"type":"password"}}`, 400, "unsupported_connection_type"},
		"missing secret":     {`{"provider_id":"binance","connection":{"type":"api_key","api_key":"a"}}`, 400, "bad_request"},
		"missing connection": {`{"provider_id":"binance"}`, 400, "bad_request"},
		"missing provider":   {`{"connection":{"type":"api_key","api_key":"a","secret_key":"b"}}`, 400, "bad_request"},
		"malformed":          {`{"provider_id":`, 400, "bad_request"},
		"wrong secret":       {strings.Replace(good, creds["secret_key"], "wrong"+creds["secret_key"][5:], 1), 400, "invalid_credentials"},
		"not json":           {`provider_id=binance`, 400, "bad_request"},
		"unknown field":      {`{"provider":"binance"}`, 400, "bad_request"},
	} {
		rec, body := w.send(t, "POST", w.bob, "/accounts/v2/providers", b.body, nil, "")
		if rec.Code != b.status || errorCause(body) != b.cause {
			t.Errorf("%s: %d %v, want %d %s", name, rec.Code, body, b.status, b.cause)
		}
		if strings.Contains(rec.Body.String(), creds["secret_key"][5:]) {
			t.Errorf("%s: the answer repeats the secret", name)
		}
	}
	if count(w.bob) != before || syncs.count() != 0 {
		t.Fatalf("refused requests wrote: %d connections (was %d), %d syncs queued", count(w.bob), before, syncs.count())
	}

	key := http.Header{"Idempotency-Key": {"add-1"}}
	rec, body := w.send(t, "POST", w.bob, "/accounts/v2/providers", good, key, "AddProvidersResponse")
	if rec.Code != 201 || syncs.count() != 1 {
		t.Fatalf("add: %d %v", rec.Code, body)
	}
	conn := body["data"].(map[string]any)["connection"].(map[string]any)
	if conn["status"] != "pending" || conn["display_label"] != "Trading" {
		t.Fatalf("connection %v", conn)
	}
	if again, _ := w.send(t, "POST", w.bob, "/accounts/v2/providers", good, key, "AddProvidersResponse"); again.Code != 201 || again.Header().Get("Idempotent-Replayed") != "true" || syncs.count() != 1 {
		t.Fatalf("replay: %d, %d syncs", again.Code, syncs.count())
	}
	if rec, body := w.send(t, "POST", w.bob, "/accounts/v2/providers", good, nil, ""); rec.Code != 409 || errorCause(body) != "already_connected" {
		t.Fatalf("the same key twice: %d %v", rec.Code, body)
	}

	id := conn["connection_id"].(string)
	alices := w.conns["alice-binance"].ID
	rec, body = w.send(t, "DELETE", w.bob, "/accounts/v2/providers", `{"connection_ids":["`+id+`","`+alices+`"]}`, nil, "DeleteProvidersResponse")
	removed := body["data"].(map[string]any)["removed"].([]any)
	if rec.Code != 200 || len(removed) != 1 || removed[0] != id || errorCause(body) != "not_found" {
		t.Fatalf("delete: %d %v", rec.Code, body)
	}
	if _, err := w.st.Connection(ctx, w.alice.ID, alices); err != nil {
		t.Fatalf("bob removed alice's connection: %v", err)
	}
	if rec, body := w.send(t, "DELETE", w.bob, "/accounts/v2/providers", `{}`, nil, ""); rec.Code != 400 || errorCause(body) != "bad_request" {
		t.Fatalf("empty delete: %d %v", rec.Code, body)
	}
	rec, body = w.send(t, "DELETE", w.alice, "/accounts/v2/providers", `{"provider_ids":["binance"]}`, nil, "DeleteProvidersResponse")
	if rec.Code != 200 || len(body["data"].(map[string]any)["removed"].([]any)) != 1 || count(w.alice) != 1 {
		t.Fatalf("delete by provider: %d %v", rec.Code, body)
	}
}
