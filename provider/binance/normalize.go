package binance

import (
	"fmt"
	"strconv"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// Wire rows, as Binance sends them. Amounts are decimal strings and stay so until parsed
// into decimals.

type wireTrade struct {
	Symbol          string `json:"symbol"`
	ID              int64  `json:"id"`
	OrderID         int64  `json:"orderId"`
	Price           string `json:"price"`
	Qty             string `json:"qty"`
	QuoteQty        string `json:"quoteQty"`
	Commission      string `json:"commission"`
	CommissionAsset string `json:"commissionAsset"`
	Time            int64  `json:"time"`
	IsBuyer         bool   `json:"isBuyer"`
	IsMaker         bool   `json:"isMaker"`
}

type wireDeposit struct {
	ID           string `json:"id"`
	Amount       string `json:"amount"`
	Coin         string `json:"coin"`
	Network      string `json:"network"`
	Status       int    `json:"status"`
	Address      string `json:"address"`
	AddressTag   string `json:"addressTag"`
	TxID         string `json:"txId"`
	InsertTime   int64  `json:"insertTime"`
	TransferType int    `json:"transferType"`
}

type wireWithdrawal struct {
	ID             string `json:"id"`
	Amount         string `json:"amount"`
	TransactionFee string `json:"transactionFee"`
	Coin           string `json:"coin"`
	Status         int    `json:"status"`
	Address        string `json:"address"`
	TxID           string `json:"txId"`
	ApplyTime      string `json:"applyTime"`
	Network        string `json:"network"`
	TransferType   int    `json:"transferType"`
}

// market is a symbol's two assets, from exchangeInfo.
type market struct{ Base, Quote string }

// The provider types: the endpoint each event comes from, in Binance's words.
const (
	typeTrade      = "myTrades"
	typeDeposit    = "deposit"
	typeWithdrawal = "withdrawal"
)

// depositStatus maps the deposit history's status: 0 pending, 6 credited but not yet
// withdrawable, 7 wrong deposit, 8 waiting for the user's confirmation, 1 success,
// 2 rejected.
func depositStatus(s int) opencalico.TransactionStatus {
	switch s {
	case 1, 6:
		return opencalico.TxConfirmed
	case 2, 7:
		return opencalico.TxFailed
	}
	return opencalico.TxPending // 0, 8 and codes Binance may add
}

// withdrawalStatus maps the withdrawal history's status: 0 email sent, 2 awaiting approval,
// 4 processing, 6 completed; 1 cancelled, 3 rejected, 5 failure.
func withdrawalStatus(s int) opencalico.TransactionStatus {
	switch s {
	case 6:
		return opencalico.TxConfirmed
	case 1, 3, 5:
		return opencalico.TxFailed
	}
	return opencalico.TxPending
}

// withdrawalTime parses applyTime, which Binance writes as "2006-01-02 15:04:05" in UTC.
func withdrawalTime(s string) (time.Time, error) {
	return time.ParseInLocation("2006-01-02 15:04:05", s, time.UTC)
}

func amount(s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err == nil && d.IsNegative() {
		err = fmt.Errorf("negative amount %s", s)
	}
	return d, err
}

// normalizeTrade makes one input_output transaction of a fill: a buy gives quoteQty of the
// quote asset for qty of the base asset, a sell the reverse; the commission is a trading fee
// in commissionAsset.
func normalizeTrade(connectionID string, t wireTrade, m market) (*opencalico.Transaction, error) {
	qty, err := amount(t.Qty)
	if err != nil {
		return nil, malformed("trade", t.Symbol+" "+strconv.FormatInt(t.ID, 10), err)
	}
	quoteQty, err := amount(t.QuoteQty)
	if err != nil {
		return nil, malformed("trade", t.Symbol+" "+strconv.FormatInt(t.ID, 10), err)
	}
	commission, err := amount(t.Commission)
	if err != nil {
		return nil, malformed("trade", t.Symbol+" "+strconv.FormatInt(t.ID, 10), err)
	}
	base := opencalico.Leg{AssetSymbol: m.Base, Amount: qty}
	quote := opencalico.Leg{AssetSymbol: m.Quote, Amount: quoteQty}
	tx := &opencalico.Transaction{
		ConnectionID:   connectionID,
		ProviderID:     ID,
		ExternalID:     fmt.Sprintf("trade:%s:%d", t.Symbol, t.ID),
		Type:           opencalico.TypeInputOutput,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryTrade, ProviderType: typeTrade},
		Status:         opencalico.TxConfirmed,
		Timestamp:      time.UnixMilli(t.Time).UTC(),
	}
	if t.IsBuyer {
		tx.Categorization.Subcategory = "buy"
		tx.Inputs, tx.Outputs = []opencalico.Leg{quote}, []opencalico.Leg{base}
		tx.Description = fmt.Sprintf("Bought %s %s at %s %s", t.Qty, m.Base, t.Price, m.Quote)
	} else {
		tx.Categorization.Subcategory = "sell"
		tx.Inputs, tx.Outputs = []opencalico.Leg{base}, []opencalico.Leg{quote}
		tx.Description = fmt.Sprintf("Sold %s %s at %s %s", t.Qty, m.Base, t.Price, m.Quote)
	}
	if commission.IsPositive() {
		tx.Fees = []opencalico.Fee{{AssetSymbol: t.CommissionAsset, Amount: commission, Kind: opencalico.FeeTrading}}
	}
	return tx, nil
}

// normalizeDeposit makes a receive of a deposit. Internal transfers (transferType 1) carry
// no chain transaction: their txId is a description, not a hash.
func normalizeDeposit(connectionID string, d wireDeposit) (*opencalico.Transaction, error) {
	amt, err := amount(d.Amount)
	if err != nil {
		return nil, malformed("deposit", d.ID, err)
	}
	tx := &opencalico.Transaction{
		ConnectionID:   connectionID,
		ProviderID:     ID,
		ExternalID:     "deposit:" + d.ID,
		Type:           opencalico.TypeReceive,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryDeposit, ProviderType: typeDeposit},
		Status:         depositStatus(d.Status),
		Timestamp:      time.UnixMilli(d.InsertTime).UTC(),
		Outputs:        []opencalico.Leg{{AssetSymbol: d.Coin, Amount: amt, Address: d.Address}},
		Chain:          d.Network,
		ToAddress:      d.Address,
	}
	if d.TransferType == 1 {
		tx.Description = "Internal transfer from another Binance account"
	} else {
		tx.TxHash = d.TxID
	}
	return tx, nil
}

// normalizeWithdrawal makes a send of a withdrawal: amount leaves as the input, and
// transactionFee, which Binance takes on top, is a withdrawal fee.
func normalizeWithdrawal(connectionID string, w wireWithdrawal) (*opencalico.Transaction, error) {
	amt, err := amount(w.Amount)
	if err != nil {
		return nil, malformed("withdrawal", w.ID, err)
	}
	fee := decimal.Zero
	if w.TransactionFee != "" {
		if fee, err = amount(w.TransactionFee); err != nil {
			return nil, malformed("withdrawal", w.ID, err)
		}
	}
	at, err := withdrawalTime(w.ApplyTime)
	if err != nil {
		return nil, malformed("withdrawal", w.ID, err)
	}
	tx := &opencalico.Transaction{
		ConnectionID:   connectionID,
		ProviderID:     ID,
		ExternalID:     "withdrawal:" + w.ID,
		Type:           opencalico.TypeSend,
		Categorization: opencalico.Categorization{Category: opencalico.CategoryWithdrawal, ProviderType: typeWithdrawal},
		Status:         withdrawalStatus(w.Status),
		Timestamp:      at,
		Inputs:         []opencalico.Leg{{AssetSymbol: w.Coin, Amount: amt, Address: w.Address}},
		TxHash:         w.TxID,
		Chain:          w.Network,
		ToAddress:      w.Address,
	}
	if w.TransferType == 1 {
		tx.TxHash = ""
		tx.Description = "Internal transfer to another Binance account"
	}
	if fee.IsPositive() {
		tx.Fees = []opencalico.Fee{{AssetSymbol: w.Coin, Amount: fee, Kind: opencalico.FeeWithdrawal}}
	}
	return tx, nil
}
