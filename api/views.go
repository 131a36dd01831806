package api

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/price"
)

// The JSON views of the API. They are separate from the domain types so that the wire
// format (names marked [ref] in the contract, decimal strings, nulls) is decided here, in one
// place, and checked against the OpenAPI document by the tests.

// currencyValue is CurrencyValue: a fiat amount, or null (a nil pointer) when no price is
// known — never zero.
type currencyValue struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func valueView(v *price.Value) *currencyValue {
	if v == nil {
		return nil
	}
	return &currencyValue{Amount: decimalString(v.Amount), Currency: v.Currency}
}

// decimalString writes an amount exactly, without exponent.
func decimalString(d decimal.Decimal) string { return d.String() }

// optional turns "" into null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timeString(*t)
	return &s
}

type legView struct {
	AssetSymbol string         `json:"asset_symbol"`
	AssetID     *string        `json:"asset_id"`
	Amount      string         `json:"amount"`
	Value       *currencyValue `json:"value"`
	Address     *string        `json:"address"`
}

type feeItemView struct {
	AssetSymbol string         `json:"asset_symbol"`
	AssetID     *string        `json:"asset_id"`
	Amount      string         `json:"amount"`
	Value       *currencyValue `json:"value"`
	Kind        string         `json:"kind"`
}

type feeObjectView struct {
	Total *currencyValue `json:"total"`
	Items []feeItemView  `json:"items"`
}

type categorizationView struct {
	Category     string  `json:"category"`
	Subcategory  *string `json:"subcategory"`
	ProviderType *string `json:"provider_type"`
}

// transactionView is one member of `Transactions data`.
type transactionView struct {
	ID             string             `json:"id"`
	UserID         string             `json:"user_id,omitempty"`
	ConnectionID   string             `json:"connection_id"`
	ProviderID     string             `json:"provider_id"`
	DisplayLabel   string             `json:"display_label,omitempty"`
	Type           string             `json:"type"`
	Categorization categorizationView `json:"categorization"`
	Status         string             `json:"status"`
	Timestamp      string             `json:"timestamp"`
	Inputs         []legView          `json:"inputs"`
	Outputs        []legView          `json:"outputs"`
	Fees           feeObjectView      `json:"fees"`
	TxHash         *string            `json:"tx_hash"`
	Chain          *string            `json:"chain"`
	FromAddress    *string            `json:"from_address"`
	ToAddress      *string            `json:"to_address"`
	Description    *string            `json:"description"`
	TransferID     *string            `json:"transfer_id"`
}

// transactionOf builds the view of t. values may be nil (no prices): every value is then
// null. label is the connection's display label.
func transactionOf(t *opencalico.Transaction, label string, values *price.TxValues) transactionView {
	at := func(vs []*price.Value, i int) *currencyValue {
		if values == nil || i >= len(vs) {
			return nil
		}
		return valueView(vs[i])
	}
	legs := func(ls []opencalico.Leg, vs func(int) *currencyValue) []legView {
		out := make([]legView, len(ls))
		for i, l := range ls {
			out[i] = legView{AssetSymbol: l.AssetSymbol, AssetID: optional(l.AssetID), Amount: decimalString(l.Amount),
				Value: vs(i), Address: optional(l.Address)}
		}
		return out
	}
	v := transactionView{
		ID: t.ID, ConnectionID: t.ConnectionID, ProviderID: string(t.ProviderID), DisplayLabel: label,
		Type: string(t.Type),
		Categorization: categorizationView{Category: string(t.Categorization.Category),
			Subcategory: optional(t.Categorization.Subcategory), ProviderType: optional(t.Categorization.ProviderType)},
		Status:    string(t.Status),
		Timestamp: timeString(t.Timestamp),
		TxHash:    optional(t.TxHash), Chain: optional(t.Chain), FromAddress: optional(t.FromAddress),
		ToAddress: optional(t.ToAddress), Description: optional(t.Description), TransferID: optional(t.TransferID),
	}
	if values != nil {
		v.Inputs = legs(t.Inputs, func(i int) *currencyValue { return at(values.Inputs, i) })
		v.Outputs = legs(t.Outputs, func(i int) *currencyValue { return at(values.Outputs, i) })
		v.Fees.Total = valueView(values.FeeTotal)
	} else {
		none := func(int) *currencyValue { return nil }
		v.Inputs, v.Outputs = legs(t.Inputs, none), legs(t.Outputs, none)
	}
	v.Fees.Items = make([]feeItemView, len(t.Fees))
	for i, f := range t.Fees {
		var fv *currencyValue
		if values != nil {
			fv = at(values.Fees, i)
		}
		v.Fees.Items[i] = feeItemView{AssetSymbol: f.AssetSymbol, AssetID: optional(f.AssetID), Amount: decimalString(f.Amount),
			Value: fv, Kind: string(f.Kind)}
	}
	return v
}

// assetPositionView is AssetPosition.
type assetPositionView struct {
	AssetSymbol  string         `json:"asset_symbol"`
	AssetName    *string        `json:"asset_name"`
	AssetID      *string        `json:"asset_id"`
	Quantity     string         `json:"quantity"`
	Available    string         `json:"available"`
	Locked       string         `json:"locked"`
	Staked       string         `json:"staked"`
	Price        *currencyValue `json:"price"`
	Value        *currencyValue `json:"value"`
	ProviderID   string         `json:"provider_id,omitempty"`
	ConnectionID string         `json:"connection_id,omitempty"`
	DisplayLabel string         `json:"display_label,omitempty"`
	Chain        *string        `json:"chain"`
	UpdatedAt    string         `json:"updated_at"`
	Sources      []assetSource  `json:"sources,omitempty"`
}

type assetSource struct {
	ProviderID   string         `json:"provider_id"`
	ConnectionID string         `json:"connection_id"`
	DisplayLabel string         `json:"display_label,omitempty"`
	Quantity     string         `json:"quantity"`
	Value        *currencyValue `json:"value"`
}

// positionOf builds the view of one connection's position.
func positionOf(p opencalico.Position, label string, v price.PositionValue) assetPositionView {
	return assetPositionView{
		AssetSymbol: p.AssetSymbol, AssetName: optional(p.AssetName), AssetID: optional(p.AssetID),
		Quantity: decimalString(p.Quantity), Available: decimalString(p.Available), Locked: decimalString(p.Locked),
		Staked: decimalString(p.Staked), Price: valueView(v.Price), Value: valueView(v.Value),
		ProviderID: string(p.ProviderID), ConnectionID: p.ConnectionID, DisplayLabel: label,
		Chain: optional(p.Chain), UpdatedAt: timeString(p.UpdatedAt),
	}
}

// providerView is ProviderMetadataV2.1 (Calico-Version 2.1) and, with the 2.1-only fields
// left out, ProviderMetadata (2.0).
type providerView struct {
	ProviderID   string                    `json:"provider_id"`
	Name         string                    `json:"name"`
	Kind         string                    `json:"kind,omitempty"`
	LogoURL      *string                   `json:"logo_url"`
	AuthTypes    []string                  `json:"auth_types"`
	Chains       []string                  `json:"chains,omitempty"`
	AuthMetadata []opencalico.AuthMetaData `json:"auth_metadata,omitempty"`
	ConnectionID string                    `json:"connection_id,omitempty"`
	DisplayLabel string                    `json:"display_label,omitempty"`
}

func providerOf(p opencalico.Provider, version string) providerView {
	v := providerView{ProviderID: string(p.ID), Name: p.Name, LogoURL: optional(p.LogoURL), AuthTypes: []string{}}
	for _, a := range p.AuthTypes {
		v.AuthTypes = append(v.AuthTypes, string(a))
	}
	if version == Version20 {
		return v
	}
	v.Kind = string(p.Kind)
	v.Chains = append([]string{}, p.Chains...)
	v.AuthMetadata = []opencalico.AuthMetaData{}
	for _, m := range p.AuthMetaData {
		if m.Fields == nil {
			m.Fields = []opencalico.AuthField{} // oauth2: nothing to fill, but an array
		}
		v.AuthMetadata = append(v.AuthMetadata, m)
	}
	return v
}

// connectionView is ConnectedProvidersMetadataV2.1.
type connectionView struct {
	ConnectionID         string       `json:"connection_id"`
	ProviderID           string       `json:"provider_id"`
	DisplayLabel         string       `json:"display_label"`
	ConnectionType       string       `json:"connection_type"`
	Status               string       `json:"status"`
	StatusDetail         *string      `json:"status_detail"`
	CreatedAt            string       `json:"created_at"`
	LastSyncedAt         *string      `json:"last_synced_at"`
	AssetsSyncedAt       *string      `json:"assets_synced_at"`
	TransactionsSyncedAt *string      `json:"transactions_synced_at"`
	Provider             providerView `json:"provider"`
}

func connectionOf(c *opencalico.Connection, p opencalico.Provider) connectionView {
	return connectionView{
		ConnectionID: c.ID, ProviderID: string(c.ProviderID), DisplayLabel: c.DisplayLabel,
		ConnectionType: string(c.Type), Status: string(c.Status), StatusDetail: optional(statusDetailText(c.StatusDetail)),
		CreatedAt: timeString(c.CreatedAt), LastSyncedAt: optionalTime(c.LastSyncedAt),
		AssetsSyncedAt: optionalTime(c.AssetsSyncedAt), TransactionsSyncedAt: optionalTime(c.TransactionsSyncedAt),
		Provider: providerOf(p, Version21),
	}
}

// statusDetailText says in one sentence what the typed status detail holds.
func statusDetailText(d opencalico.StatusDetail) string {
	if d.IsZero() {
		return ""
	}
	msg := d.Message
	if len(d.Incomplete) > 0 {
		msg += " Incomplete: " + joinComma(d.Incomplete) + "."
	}
	for _, m := range d.Mismatches {
		msg += " " + m.AssetSymbol + ": history " + m.Computed.String() + ", balance " + m.Reported.String() + "."
	}
	if msg == "" {
		msg = string(d.Cause)
	}
	return trimSpace(msg)
}
