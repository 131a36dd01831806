package coinbase

import (
	"encoding/json"
	"time"
)

// The wire format of the Coinbase v2 API (only the fields the adapter reads).

// money is Coinbase's {amount, currency}; the amount is a signed decimal string.
type money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

type pagination struct {
	EndingBefore  *string `json:"ending_before"`
	StartingAfter *string `json:"starting_after"`
	Limit         int     `json:"limit"`
	Order         string  `json:"order"`
	PreviousURI   *string `json:"previous_uri"`
	NextURI       *string `json:"next_uri"`
}

type wireUser struct {
	Data struct {
		ID string `json:"id"`
	} `json:"data"`
}

type wireAccount struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Currency struct {
		Code string `json:"code"`
		Name string `json:"name"`
	} `json:"currency"`
	Balance   money     `json:"balance"`
	UpdatedAt time.Time `json:"updated_at"`
}

type accountsPage struct {
	Pagination pagination    `json:"pagination"`
	Data       []wireAccount `json:"data"`
}

type party struct {
	Resource string `json:"resource"`
	ID       string `json:"id"`
	Address  string `json:"address"`
	Email    string `json:"email"`
}

type network struct {
	Status         string `json:"status"`
	Hash           string `json:"hash"`
	Name           string `json:"name"`
	TransactionFee *money `json:"transaction_fee"`
}

type orderObject struct {
	ID  string `json:"id"`
	Fee *money `json:"fee"`
}

type fillObject struct {
	FillPrice  string `json:"fill_price"`
	ProductID  string `json:"product_id"`
	OrderID    string `json:"order_id"`
	OrderSide  string `json:"order_side"`
	Commission string `json:"commission"`
}

// wireTx is one row of a wallet's transaction list.
type wireTx struct {
	ID                string       `json:"id"`
	Type              string       `json:"type"`
	Status            string       `json:"status"`
	Amount            money        `json:"amount"`
	NativeAmount      money        `json:"native_amount"`
	Description       string       `json:"description"`
	CreatedAt         time.Time    `json:"created_at"`
	UpdatedAt         time.Time    `json:"updated_at"`
	Network           *network     `json:"network"`
	To                *party       `json:"to"`
	From              *party       `json:"from"`
	Buy               *orderObject `json:"buy"`
	Sell              *orderObject `json:"sell"`
	Trade             *orderObject `json:"trade"`
	AdvancedTradeFill *fillObject  `json:"advanced_trade_fill"`
}

// errorBody is Coinbase's error shape.
type errorBody struct {
	Errors []struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"errors"`
}

// row is one wallet's transaction with the wallet it was read from. It is what the sync state
// keeps for halves awaiting their partner and for pending events.
type row struct {
	Wallet string          `json:"w"`
	Raw    json.RawMessage `json:"r"`
	tx     wireTx
}

func (r *row) decode() error { return json.Unmarshal(r.Raw, &r.tx) }
