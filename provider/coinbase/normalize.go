package coinbase

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// groupKey names the economic event a row belongs to; it is also the transaction's
// ExternalID. paired is true for the kinds Coinbase books as one row in each wallet the
// event touches: a conversion (trade.id), a buy or sell paid from or to a fiat wallet
// (buy.id, sell.id), and an Advanced Trade fill (order id, fill time and price: the fill
// has no id of its own, and its base and quote rows share those three).
func groupKey(tx *wireTx) (key string, paired bool) {
	switch {
	case tx.Type == "trade" && tx.Trade != nil && tx.Trade.ID != "":
		return "trade:" + tx.Trade.ID, true
	case tx.Type == "buy" && tx.Buy != nil && tx.Buy.ID != "":
		return "buy:" + tx.Buy.ID, true
	case tx.Type == "sell" && tx.Sell != nil && tx.Sell.ID != "":
		return "sell:" + tx.Sell.ID, true
	case tx.Type == "advanced_trade_fill" && tx.AdvancedTradeFill != nil && tx.AdvancedTradeFill.OrderID != "":
		f := tx.AdvancedTradeFill
		return "fill:" + f.OrderID + ":" + tx.CreatedAt.UTC().Format(time.RFC3339Nano) + ":" + f.FillPrice, true
	}
	return "tx:" + tx.ID, false
}

// complete reports whether a paired group holds every side of its event: both currencies of
// a conversion or of a buy/sell against a fiat wallet, base and quote of a fill. A buy paid by
// card has only its crypto side; it is never complete and is emitted alone once the grace
// period says no partner will come.
func complete(group []*wireTx) bool {
	currencies := map[string]bool{}
	for _, tx := range group {
		currencies[tx.Amount.Currency] = true
	}
	if f := group[0].AdvancedTradeFill; group[0].Type == "advanced_trade_fill" && f != nil {
		base, quote, ok := strings.Cut(f.ProductID, "-")
		return ok && currencies[base] && currencies[quote]
	}
	return len(currencies) >= 2
}

// statusOf maps Coinbase's statuses; an event is pending while any of its rows is.
func statusOf(group []*wireTx) opencalico.TransactionStatus {
	anyConfirmed := false
	for _, tx := range group {
		switch tx.Status {
		case "completed", "":
			anyConfirmed = true
		case "failed", "canceled", "cancelled", "expired":
		default: // pending, waiting_for_clearing, waiting_for_signature, …
			return opencalico.TxPending
		}
	}
	if anyConfirmed {
		return opencalico.TxConfirmed
	}
	return opencalico.TxFailed
}

// kindOf gives, for a Coinbase type, the category for money arriving and leaving, the
// subcategory, and whether the shape is a transfer (send/receive rather than
// input_only/output_only). Unknown types are kept as uncategorized.
type kind struct {
	in, out     opencalico.Category
	sub         string
	transfer    bool
	categorized bool
}

var kinds = map[string]kind{
	"advanced_trade_fill": {opencalico.CategoryTrade, opencalico.CategoryTrade, "", false, true},
	"buy":                 {opencalico.CategoryTrade, opencalico.CategoryTrade, "buy", false, true},
	"sell":                {opencalico.CategoryTrade, opencalico.CategoryTrade, "sell", false, true},
	"trade":               {opencalico.CategoryTrade, opencalico.CategoryTrade, "convert", false, true},
	"send":                {opencalico.CategoryDeposit, opencalico.CategoryWithdrawal, "", true, true},
	"receive":             {opencalico.CategoryDeposit, opencalico.CategoryWithdrawal, "", true, true},
	"transfer":            {opencalico.CategoryTransfer, opencalico.CategoryTransfer, "", true, true},
	"fiat_deposit":        {opencalico.CategoryDeposit, opencalico.CategoryWithdrawal, "fiat", true, true},
	"fiat_withdrawal":     {opencalico.CategoryDeposit, opencalico.CategoryWithdrawal, "fiat", true, true},
	"staking_reward":      {opencalico.CategoryStakingReward, opencalico.CategoryStakingReward, "", false, true},
	"inflation_reward":    {opencalico.CategoryStakingReward, opencalico.CategoryStakingReward, "inflation", false, true},
	"interest":            {opencalico.CategoryInterest, opencalico.CategoryInterest, "", false, true},
	"earn_payout":         {opencalico.CategoryBonus, opencalico.CategoryBonus, "earn", false, true},
	"clawback":            {opencalico.CategoryOther, opencalico.CategoryOther, "clawback", false, true},
}

// normalize turns the rows of one event (one row, or the rows a paired event left in each
// wallet) into one transaction. It is pure.
//
// Each row's amount is the whole effect on its wallet, fees included. So per currency the
// event's net is the sum of its rows; fees paid in a currency the event moved are carved out
// of that currency's leg (leg = net + fee), which keeps outputs − inputs − fees equal to the
// wallet's change exactly. A fee in a currency no row moved (a card buy's fee) did not touch
// the account and is not reported as its fee.
func normalize(group []*wireTx) (*opencalico.Transaction, error) {
	if len(group) == 0 {
		return nil, fmt.Errorf("coinbase: empty event")
	}
	rows := slices.Clone(group)
	slices.SortFunc(rows, func(a, b *wireTx) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	first := rows[0]
	key, _ := groupKey(first)
	t := &opencalico.Transaction{
		ProviderID:  ID,
		ExternalID:  key,
		Status:      statusOf(rows),
		Timestamp:   first.CreatedAt.UTC(),
		Description: first.Description,
	}

	var currencies []string
	net := map[string]decimal.Decimal{}
	var fees []opencalico.Fee
	addFee := func(m *money, k opencalico.FeeKind) error {
		if m == nil || m.Amount == "" || m.Currency == "" {
			return nil
		}
		a, err := decimal.NewFromString(m.Amount)
		if err != nil {
			return fmt.Errorf("coinbase: transaction %s: fee amount %q: %w", first.ID, m.Amount, err)
		}
		if a.IsZero() {
			return nil
		}
		fees = append(fees, opencalico.Fee{AssetSymbol: m.Currency, Amount: a.Abs(), Kind: k})
		return nil
	}
	eventFeeTaken := false // trade/buy/sell fee and fill commission repeat on every row
	for _, tx := range rows {
		amt, err := decimal.NewFromString(tx.Amount.Amount)
		if err != nil || tx.Amount.Currency == "" {
			return nil, fmt.Errorf("coinbase: transaction %s: amount %q %q unreadable", tx.ID, tx.Amount.Amount, tx.Amount.Currency)
		}
		if _, ok := net[tx.Amount.Currency]; !ok {
			currencies = append(currencies, tx.Amount.Currency)
		}
		net[tx.Amount.Currency] = net[tx.Amount.Currency].Add(amt)
		if n := tx.Network; n != nil {
			if t.TxHash == "" {
				t.TxHash = n.Hash
			}
			if t.Chain == "" {
				t.Chain = n.Name
			}
			// The sender pays the network fee: an incoming row's fee is not ours.
			if amt.IsNegative() {
				if err := addFee(n.TransactionFee, opencalico.FeeNetwork); err != nil {
					return nil, err
				}
			}
		}
		if tx.To != nil && t.ToAddress == "" {
			t.ToAddress = tx.To.Address
		}
		if tx.From != nil && t.FromAddress == "" {
			t.FromAddress = tx.From.Address
		}
		if eventFeeTaken {
			continue
		}
		for _, o := range []*orderObject{tx.Trade, tx.Buy, tx.Sell} {
			if o != nil && o.Fee != nil && !eventFeeTaken {
				if err := addFee(o.Fee, opencalico.FeeTrading); err != nil {
					return nil, err
				}
				eventFeeTaken = true
			}
		}
		if f := tx.AdvancedTradeFill; f != nil && f.Commission != "" {
			_, quote, _ := strings.Cut(f.ProductID, "-")
			if err := addFee(&money{Amount: f.Commission, Currency: quote}, opencalico.FeeTrading); err != nil {
				return nil, err
			}
			eventFeeTaken = true
		}
	}

	legs := map[string]decimal.Decimal{}
	for c, n := range net {
		legs[c] = n
	}
	for _, f := range fees {
		if _, moved := net[f.AssetSymbol]; moved {
			legs[f.AssetSymbol] = legs[f.AssetSymbol].Add(f.Amount)
			t.Fees = append(t.Fees, f)
		}
	}
	for _, c := range currencies {
		switch l := legs[c]; {
		case l.IsPositive():
			t.Outputs = append(t.Outputs, opencalico.Leg{AssetSymbol: c, Amount: l})
		case l.IsNegative():
			t.Inputs = append(t.Inputs, opencalico.Leg{AssetSymbol: c, Amount: l.Neg()})
		}
	}

	t.Type, t.Categorization = classify(first, len(t.Inputs) > 0, len(t.Outputs) > 0)
	return t, nil
}

// classify picks the shape from the legs and the category from Coinbase's type.
func classify(first *wireTx, in, out bool) (opencalico.TransactionType, opencalico.Categorization) {
	c := opencalico.Categorization{ProviderType: first.Type}
	k, ok := kinds[first.Type]
	if !ok || !k.categorized || (!in && !out) {
		c.Category = opencalico.CategoryOther
		return opencalico.TypeUncategorized, c
	}
	c.Subcategory = k.sub
	if first.Type == "advanced_trade_fill" && first.AdvancedTradeFill != nil {
		c.Subcategory = strings.ToLower(first.AdvancedTradeFill.OrderSide)
	}
	switch {
	case in && out:
		c.Category = k.out
		return opencalico.TypeInputOutput, c
	case in:
		c.Category = k.out
		if k.transfer {
			return opencalico.TypeSend, c
		}
		return opencalico.TypeInputOnly, c
	default:
		c.Category = k.in
		if k.transfer {
			return opencalico.TypeReceive, c
		}
		return opencalico.TypeOutputOnly, c
	}
}

// earliest is the first creation time of an event's rows.
func earliest(group []*wireTx) time.Time {
	t := group[0].CreatedAt
	for _, tx := range group[1:] {
		if tx.CreatedAt.Before(t) {
			t = tx.CreatedAt
		}
	}
	return t
}

// unreadable is the stand-in for an event whose amounts cannot be read: kept and visible as
// uncategorized, without legs, so nothing is silently dropped.
func unreadable(group []*wireTx) *opencalico.Transaction {
	key, _ := groupKey(group[0])
	return &opencalico.Transaction{
		ProviderID:     ID,
		ExternalID:     key,
		Type:           opencalico.TypeUncategorized,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryOther, ProviderType: group[0].Type},
		Status:         statusOf(group),
		Timestamp:      earliest(group).UTC(),
		Description:    "Coinbase reported an amount that could not be read.",
	}
}
