package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/openapi"
	"github.com/opencalico/opencalico/price"
)

// checkSchema validates v, as JSON, against a component schema of the OpenAPI document with
// the JSON Schema 2020-12 rules of OpenAPI 3.1.
func checkSchema(t *testing.T, doc *openapi3.T, component string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var decoded any
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatal(err)
	}
	ref, ok := doc.Components.Schemas[component]
	if !ok {
		t.Fatalf("no component %s", component)
	}
	if err := ref.Value.VisitJSON(decoded, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s does not match the document: %v\n%s", component, err, body)
	}
}

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestViewsMatchTheDocument(t *testing.T) {
	doc := loadDocument(t)
	d := decimal.RequireFromString
	ts := time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)
	usd := func(s string) *price.Value { return &price.Value{Amount: d(s), Currency: "USD"} }
	trade := &opencalico.Transaction{
		ID: "txn_1", ConnectionID: "conn_1", ProviderID: "coinbase", ExternalID: "fill-1",
		Type: opencalico.TypeInputOutput, Status: opencalico.TxConfirmed, Timestamp: ts,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryTrade, Subcategory: "buy", ProviderType: "advanced_trade_fill"},
		Inputs:         []opencalico.Leg{{AssetSymbol: "USD", Amount: d("34125.06")}},
		Outputs:        []opencalico.Leg{{AssetSymbol: "BTC", AssetID: "bip122:000000000019d6689c085ae165831e93/slip44:0", Amount: d("0.5")}},
		Fees:           []opencalico.Fee{{AssetSymbol: "USD", Amount: d("40.95"), Kind: opencalico.FeeTrading}},
	}
	send := &opencalico.Transaction{
		ID: "txn_2", ConnectionID: "conn_2", ProviderID: "bitcoin", ExternalID: "abc", Type: opencalico.TypeSend,
		Status: opencalico.TxPending, Timestamp: ts, Categorization: opencalico.Categorization{Category: opencalico.CategoryWithdrawal},
		Inputs: []opencalico.Leg{{AssetSymbol: "BTC", Amount: d("0.00012")}}, ToAddress: "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
		Fees: []opencalico.Fee{{AssetSymbol: "BTC", Amount: d("0.0000021"), Kind: opencalico.FeeNetwork}}, TxHash: "abc", Chain: "bitcoin",
	}
	priced := &price.TxValues{Inputs: []*price.Value{usd("34125.06")}, Outputs: []*price.Value{usd("34125.06")},
		Fees: []*price.Value{usd("40.95")}, FeeTotal: usd("40.95")}
	for name, v := range map[string]transactionView{
		"priced trade":     transactionOf(trade, "My Coinbase", priced),
		"unpriced trade":   transactionOf(trade, "My Coinbase", nil),
		"partially priced": transactionOf(trade, "", &price.TxValues{Outputs: []*price.Value{usd("1")}, Fees: []*price.Value{nil}}),
		"send":             transactionOf(send, "Cold wallet", nil),
	} {
		t.Run(name, func(t *testing.T) { checkSchema(t, doc, "TransactionsData", v) })
	}
	unpriced := transactionOf(trade, "", nil)
	if unpriced.Fees.Total != nil || unpriced.Outputs[0].Value != nil {
		t.Fatal("an unknown value must be null, never zero")
	}

	pos := opencalico.Position{ConnectionID: "conn_1", ProviderID: "coinbase", AssetSymbol: "BTC", AssetName: "Bitcoin",
		Quantity: d("0.51234"), Available: d("0.5"), Locked: d("0.01234"), Staked: decimal.Zero, UpdatedAt: ts}
	checkSchema(t, doc, "AssetPosition", positionOf(pos, "My Coinbase", price.PositionValue{Price: usd("68250.12"), Value: usd("34967.27")}))
	checkSchema(t, doc, "AssetPosition", positionOf(pos, "My Coinbase", price.PositionValue{}))

	prov := opencalico.Provider{ID: "coinbase", Name: "Coinbase", Kind: opencalico.KindExchange, AuthTypes: []opencalico.AuthType{opencalico.AuthAPIKey},
		AuthMetaData: []opencalico.AuthMetaData{{AuthType: opencalico.AuthAPIKey, Fields: []opencalico.AuthField{{Name: "api_key", Label: "API key"}}}}}
	checkSchema(t, doc, "ProviderMetadataV2.1", providerOf(prov, Version21))
	checkSchema(t, doc, "ProviderMetadata", providerOf(prov, Version20))
	synced := ts.Add(time.Hour)
	conn := &opencalico.Connection{ID: "conn_1", UserID: "usr_1", ProviderID: "coinbase", DisplayLabel: "My Coinbase",
		Type: opencalico.AuthAPIKey, Status: opencalico.StatusError, CreatedAt: ts, LastSyncedAt: &synced,
		StatusDetail: opencalico.StatusDetail{Cause: opencalico.EProviderUnavailable, Message: "Coinbase did not answer.",
			Mismatches: []opencalico.BalanceMismatch{{AssetSymbol: "BTC", Computed: d("1"), Reported: d("1.1"), Difference: d("-0.1")}}}}
	view := connectionOf(conn, prov)
	checkSchema(t, doc, "ConnectedProvidersMetadataV2.1", view)
	if view.StatusDetail == nil || *view.StatusDetail != "Coinbase did not answer. BTC: history 1, balance 1.1." {
		t.Fatalf("status detail %v", view.StatusDetail)
	}
}
