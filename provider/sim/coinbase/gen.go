package coinbase

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"
)

// Wire shapes of the simulator, written from Coinbase's documentation independently of the
// adapter's.

type money struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

type party struct {
	Resource string `json:"resource"`
	ID       string `json:"id,omitempty"`
	Address  string `json:"address,omitempty"`
}

type netInfo struct {
	Status            string `json:"status"`
	Hash              string `json:"hash,omitempty"`
	Name              string `json:"name,omitempty"`
	TransactionFee    *money `json:"transaction_fee,omitempty"`
	TransactionAmount *money `json:"transaction_amount,omitempty"`
}

type orderInfo struct {
	ID            string `json:"id"`
	Resource      string `json:"resource"`
	Fee           *money `json:"fee,omitempty"`
	Total         *money `json:"total,omitempty"`
	Subtotal      *money `json:"subtotal,omitempty"`
	PaymentMethod string `json:"payment_method_name,omitempty"`
}

type fillInfo struct {
	FillPrice  string `json:"fill_price"`
	ProductID  string `json:"product_id"`
	OrderID    string `json:"order_id"`
	OrderSide  string `json:"order_side"`
	Commission string `json:"commission"`
}

type details struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle"`
}

// tx is one row of a wallet's history as Coinbase shows it.
type tx struct {
	ID                string     `json:"id"`
	Type              string     `json:"type"`
	Status            string     `json:"status"`
	Amount            money      `json:"amount"`
	NativeAmount      money      `json:"native_amount"`
	Description       *string    `json:"description"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	Resource          string     `json:"resource"`
	ResourcePath      string     `json:"resource_path"`
	Network           *netInfo   `json:"network,omitempty"`
	To                *party     `json:"to,omitempty"`
	From              *party     `json:"from,omitempty"`
	Details           details    `json:"details"`
	Buy               *orderInfo `json:"buy,omitempty"`
	Sell              *orderInfo `json:"sell,omitempty"`
	Trade             *orderInfo `json:"trade,omitempty"`
	AdvancedTradeFill *fillInfo  `json:"advanced_trade_fill,omitempty"`

	amount decimal.Decimal
}

// counts reports whether the row moves the balance: failed and cancelled rows do not.
func (t *tx) counts() bool { return t.Status != "failed" && t.Status != "canceled" }

type asset struct {
	code, name string
	places     int32
	price      float64 // USD, rough: only to make amounts plausible
	netFee     string  // network fee of a send
	stakes     bool
}

var assets = []asset{
	{"USD", "US Dollar", 2, 1, "", false},
	{"BTC", "Bitcoin", 8, 40000, "0.00005", false},
	{"ETH", "Ethereum", 8, 2500, "0.0006", true},
	{"SOL", "Solana", 8, 100, "0.000005", true},
	{"USDC", "USDC", 6, 1, "1.5", false},
	{"ADA", "Cardano", 6, 0.5, "0.17", true},
	{"ATOM", "Cosmos", 6, 10, "0.005", true},
	{"XTZ", "Tezos", 6, 1, "0.0015", true},
	{"DOGE", "Dogecoin", 8, 0.1, "2", false},
	{"LTC", "Litecoin", 8, 80, "0.0001", false}, // stays empty: a wallet with no history
}

var products = []struct{ base, quote string }{
	{"BTC", "USD"}, {"ETH", "USD"}, {"SOL", "USD"}, {"ETH", "BTC"}, {"SOL", "USDC"},
}

// generator makes one user's history; it keeps the running balances so that no wallet ever
// goes below zero.
type generator struct {
	rng     *rand.Rand
	u       *user
	balance map[string]decimal.Decimal
}

func (g *generator) id() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a), uint16(a>>32), uint16(a>>48)&0xfff,
		uint16(b)&0x3fff|0x8000, b>>16&0xffffffffffff)
}

func (g *generator) hash() string {
	return fmt.Sprintf("%016x%016x%016x%016x", g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint64(), g.rng.Uint64())
}

func assetOf(code string) asset {
	for _, a := range assets {
		if a.code == code {
			return a
		}
	}
	panic("sim: unknown asset " + code)
}

// dec makes an amount of asset code from a float, rounded down to the asset's places.
func dec(code string, f float64) decimal.Decimal {
	return decimal.NewFromFloat(f).Truncate(assetOf(code).places)
}

// frac is a share of a balance, rounded down.
func (g *generator) frac(code string, lo, hi float64) decimal.Decimal {
	f := lo + g.rng.Float64()*(hi-lo)
	return g.balance[code].Mul(decimal.NewFromFloat(f)).Truncate(assetOf(code).places)
}

func (g *generator) price(code string) float64 {
	return assetOf(code).price * (0.6 + 0.8*g.rng.Float64())
}

// book appends a row to code's wallet.
func (g *generator) book(at time.Time, code, typ, status string, amount decimal.Decimal, fill func(*tx)) *tx {
	w := g.u.wallet(code)
	usd := amount.Mul(decimal.NewFromFloat(assetOf(code).price)).Round(2)
	t := &tx{
		ID: g.id(), Type: typ, Status: status, amount: amount,
		Amount:       money{amount.String(), code},
		NativeAmount: money{usd.String(), "USD"},
		CreatedAt:    at, UpdatedAt: at, Resource: "transaction",
		Details: details{Title: typ, Subtitle: code},
	}
	t.ResourcePath = "/v2/accounts/" + w.id + "/transactions/" + t.ID
	if fill != nil {
		fill(t)
	}
	if t.counts() {
		g.balance[code] = g.balance[code].Add(amount)
	}
	w.add(t)
	return t
}

func (g *generator) has(code string, min string) bool {
	return g.balance[code].GreaterThanOrEqual(decimal.RequireFromString(min))
}

func (g *generator) cryptoWithBalance() (string, bool) {
	var c []string
	for _, a := range assets[1:] {
		if a.code != "LTC" && g.balance[a.code].IsPositive() {
			c = append(c, a.code)
		}
	}
	if len(c) == 0 {
		return "", false
	}
	return c[g.rng.IntN(len(c))], true
}

func (g *generator) anyCrypto() string {
	return assets[1+g.rng.IntN(len(assets)-2)].code
}

// event generates one economic event at time at; it reports false if the chosen kind was not
// possible with the balances at hand (the caller tries another).
func (g *generator) event(at time.Time) bool {
	status := "completed"
	switch k := g.rng.IntN(100); {
	case k < 10 || g.balance["USD"].LessThan(decimal.NewFromInt(100)) && k < 30:
		amt := dec("USD", 100+g.rng.Float64()*4900)
		g.book(at, "USD", "fiat_deposit", status, amt, nil)
	case k < 13:
		if !g.has("USD", "500") {
			return false
		}
		g.book(at, "USD", "fiat_withdrawal", status, g.frac("USD", 0.05, 0.3).Neg(), nil)
	case k < 30: // buy, from the USD wallet or by card
		c := g.anyCrypto()
		sub := dec("USD", 20+g.rng.Float64()*980)
		fee := sub.Mul(decimal.RequireFromString("0.0149")).Round(2)
		qty := dec(c, sub.InexactFloat64()/g.price(c))
		if qty.IsZero() {
			return false
		}
		order := &orderInfo{ID: g.id(), Resource: "buy", Fee: &money{fee.String(), "USD"},
			Subtotal: &money{sub.String(), "USD"}, Total: &money{sub.Add(fee).String(), "USD"}}
		byCard := g.rng.IntN(5) == 0
		if !byCard && g.balance["USD"].LessThan(sub.Add(fee)) {
			return false
		}
		if byCard {
			order.PaymentMethod = "Visa debit card"
		} else {
			order.PaymentMethod = "USD Wallet"
			g.book(at, "USD", "buy", status, sub.Add(fee).Neg(), func(t *tx) { t.Buy = order })
		}
		g.book(at, c, "buy", status, qty, func(t *tx) { t.Buy = order })
	case k < 40: // sell into the USD wallet
		c, ok := g.cryptoWithBalance()
		if !ok {
			return false
		}
		qty := g.frac(c, 0.05, 0.5)
		gross := dec("USD", qty.InexactFloat64()*g.price(c))
		fee := gross.Mul(decimal.RequireFromString("0.0149")).Round(2)
		if qty.IsZero() || gross.LessThanOrEqual(fee) {
			return false
		}
		order := &orderInfo{ID: g.id(), Resource: "sell", Fee: &money{fee.String(), "USD"},
			Subtotal: &money{gross.String(), "USD"}, Total: &money{gross.Sub(fee).String(), "USD"}, PaymentMethod: "USD Wallet"}
		g.book(at, c, "sell", status, qty.Neg(), func(t *tx) { t.Sell = order })
		g.book(at, "USD", "sell", status, gross.Sub(fee), func(t *tx) { t.Sell = order })
	case k < 48: // convert: one row in each wallet sharing trade.id; the fee is in the source asset
		c1, ok := g.cryptoWithBalance()
		c2 := g.anyCrypto()
		if !ok || c1 == c2 {
			return false
		}
		q1 := g.frac(c1, 0.1, 0.6)
		fee := q1.Mul(decimal.RequireFromString("0.01")).Truncate(assetOf(c1).places)
		q2 := dec(c2, q1.Sub(fee).InexactFloat64()*g.price(c1)/g.price(c2))
		if q1.IsZero() || q2.IsZero() {
			return false
		}
		order := &orderInfo{ID: g.id(), Resource: "trade", Fee: &money{fee.String(), c1}}
		g.book(at, c1, "trade", status, q1.Neg(), func(t *tx) { t.Trade = order })
		g.book(at, c2, "trade", status, q2, func(t *tx) { t.Trade = order })
	case k < 62: // an Advanced Trade order of one to three fills, a row in base and quote each
		p := products[g.rng.IntN(len(products))]
		side := "BUY"
		if g.rng.IntN(2) == 0 {
			side = "SELL"
		}
		orderID := g.id()
		fills := 1 + g.rng.IntN(3)
		made := false
		for i := range fills {
			price := decimal.NewFromFloat(g.price(p.base) / assetOf(p.quote).price).Round(assetOf(p.quote).places)
			var size decimal.Decimal
			if side == "BUY" {
				size = dec(p.base, g.balance[p.quote].InexactFloat64()*(0.05+0.2*g.rng.Float64())/price.InexactFloat64())
			} else {
				size = g.frac(p.base, 0.05, 0.3)
			}
			notional := size.Mul(price).Round(assetOf(p.quote).places)
			commission := notional.Mul(decimal.RequireFromString("0.006")).Round(assetOf(p.quote).places)
			if size.IsZero() || notional.LessThanOrEqual(commission) {
				break
			}
			quoteAmt := notional.Add(commission).Neg()
			baseAmt := size
			if side == "SELL" {
				quoteAmt, baseAmt = notional.Sub(commission), size.Neg()
			} else if g.balance[p.quote].LessThan(notional.Add(commission)) {
				break
			}
			f := &fillInfo{FillPrice: price.String(), ProductID: p.base + "-" + p.quote, OrderID: orderID,
				OrderSide: side, Commission: commission.String()}
			when := at.Add(time.Duration(i) * time.Second)
			g.book(when, p.base, "advanced_trade_fill", status, baseAmt, func(t *tx) { t.AdvancedTradeFill = f })
			g.book(when, p.quote, "advanced_trade_fill", status, quoteAmt, func(t *tx) { t.AdvancedTradeFill = f })
			made = true
		}
		return made
	case k < 70: // send out to an address; the network fee is part of the debit
		c, ok := g.cryptoWithBalance()
		if !ok {
			return false
		}
		fee := decimal.RequireFromString(assetOf(c).netFee)
		amt := g.frac(c, 0.1, 0.5)
		if amt.IsZero() || g.balance[c].LessThan(amt.Add(fee)) {
			return false
		}
		if g.rng.IntN(20) == 0 {
			status = "failed"
		}
		g.book(at, c, "send", status, amt.Add(fee).Neg(), func(t *tx) {
			t.Network = &netInfo{Status: "confirmed", Hash: g.hash(), Name: c, TransactionFee: &money{fee.String(), c},
				TransactionAmount: &money{amt.String(), c}}
			t.To = &party{Resource: "address", Address: "addr_" + g.hash()[:30]}
		})
	case k < 78: // an incoming send (Coinbase books receives as type send with a credit) or receive
		c := g.anyCrypto()
		amt := dec(c, (50+g.rng.Float64()*500)/g.price(c))
		typ := "send"
		if g.rng.IntN(3) == 0 {
			typ = "receive"
		}
		g.book(at, c, typ, status, amt, func(t *tx) {
			// The sender's fee is shown but is not ours.
			t.Network = &netInfo{Status: "confirmed", Hash: g.hash(), Name: c,
				TransactionFee: &money{assetOf(c).netFee, c}}
			t.From = &party{Resource: "address", Address: "addr_" + g.hash()[:30]}
		})
	case k < 81: // transfer to or from another Coinbase product
		c := g.anyCrypto()
		if g.rng.IntN(2) == 0 && g.balance[c].IsPositive() {
			g.book(at, c, "transfer", status, g.frac(c, 0.1, 0.4).Neg(), func(t *tx) { t.To = &party{Resource: "account", ID: g.id()} })
		} else {
			g.book(at, c, "transfer", status, dec(c, 100/g.price(c)), func(t *tx) { t.From = &party{Resource: "account", ID: g.id()} })
		}
	case k < 90: // staking and inflation rewards
		var st []string
		for _, a := range assets {
			if a.stakes {
				st = append(st, a.code)
			}
		}
		c := st[g.rng.IntN(len(st))]
		typ := "staking_reward"
		if c == "ATOM" || c == "XTZ" {
			if g.rng.IntN(2) == 0 {
				typ = "inflation_reward"
			}
		}
		g.book(at, c, typ, status, dec(c, (0.5+g.rng.Float64()*5)/g.price(c)), nil)
	case k < 94:
		g.book(at, "USDC", "interest", status, dec("USDC", 0.01+g.rng.Float64()*3), nil)
	case k < 97:
		c := g.anyCrypto()
		g.book(at, c, "earn_payout", status, dec(c, 3/g.price(c)), nil)
	case k < 98:
		c, ok := g.cryptoWithBalance()
		if !ok {
			return false
		}
		g.book(at, c, "clawback", status, g.frac(c, 0.001, 0.01).Neg(), nil)
	default: // the catch-all type
		c := g.anyCrypto()
		g.book(at, c, "tx", status, dec(c, 1/g.price(c)), nil)
	}
	return true
}

// generate fills a user's wallets with n events spread from start to end.
func (g *generator) generate(n int, start, end time.Time) {
	span := end.Sub(start)
	for i := range n {
		at := start.Add(time.Duration(float64(span) * (float64(i) + g.rng.Float64()*0.9) / float64(n))).Truncate(time.Second).UTC()
		for try := 0; try < 10 && !g.event(at); try++ {
		}
	}
}
