package binance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// symbolSpec is one market of exchangeInfo. Traded says whether the generator trades it: the
// others are listed so that an adapter has to find the user's markets among many.
type symbolSpec struct {
	Symbol, Base, Quote string
	QtyDecimals         int32
	PriceDecimals       int32
	Status              string
	Traded              bool
}

var symbolSpecs = []symbolSpec{
	{"BTCUSDT", "BTC", "USDT", 5, 2, "TRADING", true},
	{"ETHUSDT", "ETH", "USDT", 4, 2, "TRADING", true},
	{"BNBUSDT", "BNB", "USDT", 3, 2, "TRADING", true},
	{"SOLUSDT", "SOL", "USDT", 2, 2, "TRADING", true},
	{"ADAUSDT", "ADA", "USDT", 1, 4, "TRADING", true},
	{"XRPUSDT", "XRP", "USDT", 0, 4, "TRADING", true},
	{"DOGEUSDT", "DOGE", "USDT", 0, 5, "TRADING", true},
	{"LTCUSDT", "LTC", "USDT", 3, 2, "TRADING", true},
	{"ETHBTC", "ETH", "BTC", 4, 5, "TRADING", true},
	{"BNBBTC", "BNB", "BTC", 2, 7, "TRADING", true},
	{"SOLBTC", "SOL", "BTC", 2, 8, "TRADING", true},
	{"LTCBTC", "LTC", "BTC", 3, 6, "TRADING", true},
	{"BNBETH", "BNB", "ETH", 3, 6, "TRADING", true},
	{"TRXUSDT", "TRX", "USDT", 1, 5, "TRADING", false},
	{"DOTUSDT", "DOT", "USDT", 2, 3, "TRADING", false},
	{"LINKUSDT", "LINK", "USDT", 2, 3, "TRADING", false},
	{"AVAXUSDT", "AVAX", "USDT", 2, 2, "TRADING", false},
	{"SHIBUSDT", "SHIB", "USDT", 0, 8, "TRADING", false},
	{"EURUSDT", "EUR", "USDT", 1, 4, "TRADING", false},
	{"BTCEUR", "BTC", "EUR", 5, 2, "TRADING", false},
	{"ETHEUR", "ETH", "EUR", 4, 2, "TRADING", false},
	{"FDUSDUSDT", "FDUSD", "USDT", 0, 4, "TRADING", false},
	{"XMRBTC", "XMR", "BTC", 3, 6, "BREAK", false},
}

// startUSD are the prices at the start of the generated history; they walk randomly after.
var startUSD = map[string]string{
	"BTC": "9000", "ETH": "200", "BNB": "15", "SOL": "2", "ADA": "0.05", "XRP": "0.2",
	"DOGE": "0.003", "LTC": "50", "USDT": "1",
}

var withdrawFee = map[string]string{
	"BTC": "0.0002", "ETH": "0.0012", "USDT": "1", "BNB": "0.0005", "SOL": "0.01", "XRP": "0.25",
	"LTC": "0.001", "ADA": "1", "DOGE": "4",
}

var networkOf = map[string]string{
	"BTC": "BTC", "ETH": "ETH", "USDT": "ETH", "BNB": "BSC", "SOL": "SOL", "XRP": "XRP",
	"LTC": "LTC", "ADA": "ADA", "DOGE": "DOGE",
}

// The wire rows, as Binance serializes them.

type tradeRow struct {
	Symbol          string `json:"symbol"`
	ID              int64  `json:"id"`
	OrderID         int64  `json:"orderId"`
	OrderListID     int64  `json:"orderListId"`
	Price           string `json:"price"`
	Qty             string `json:"qty"`
	QuoteQty        string `json:"quoteQty"`
	Commission      string `json:"commission"`
	CommissionAsset string `json:"commissionAsset"`
	Time            int64  `json:"time"`
	IsBuyer         bool   `json:"isBuyer"`
	IsMaker         bool   `json:"isMaker"`
	IsBestMatch     bool   `json:"isBestMatch"`
}

type depositRow struct {
	ID            string `json:"id"`
	Amount        string `json:"amount"`
	Coin          string `json:"coin"`
	Network       string `json:"network"`
	Status        int    `json:"status"`
	Address       string `json:"address"`
	AddressTag    string `json:"addressTag"`
	TxID          string `json:"txId"`
	InsertTime    int64  `json:"insertTime"`
	CompleteTime  int64  `json:"completeTime,omitempty"`
	TransferType  int    `json:"transferType"`
	ConfirmTimes  string `json:"confirmTimes"`
	UnlockConfirm int    `json:"unlockConfirm"`
	WalletType    int    `json:"walletType"`
}

type withdrawalRow struct {
	ID              string `json:"id"`
	Amount          string `json:"amount"`
	TransactionFee  string `json:"transactionFee"`
	Coin            string `json:"coin"`
	Status          int    `json:"status"`
	Address         string `json:"address"`
	TxID            string `json:"txId"`
	ApplyTime       string `json:"applyTime"`
	Network         string `json:"network"`
	TransferType    int    `json:"transferType"`
	WithdrawOrderID string `json:"withdrawOrderId"`
	Info            string `json:"info"`
	ConfirmNo       int    `json:"confirmNo"`
	WalletType      int    `json:"walletType"`
	TxKey           string `json:"txKey"`
	CompleteTime    string `json:"completeTime,omitempty"`

	applyMillis int64
}

// applyTimeLayout is how the withdrawal history writes times: UTC, to the second.
const applyTimeLayout = "2006-01-02 15:04:05"

// account is one seeded user: keys, history and the balances that history nets to.
type account struct {
	apiKey, secret string
	uid            int64
	trades         map[string][]tradeRow // by symbol, ascending id
	deposits       []depositRow          // ascending insertTime
	withdrawals    []withdrawalRow       // ascending applyTime
	total          map[string]decimal.Decimal
	revoked        bool
}

// generator builds one account's history in time order, keeping balances so that nothing is
// ever spent that is not there and the final balances are exactly the net of the history.
type generator struct {
	rng        *rand.Rand
	acct       *account
	usd        map[string]decimal.Decimal
	nextTrade  map[string]int64
	nextOrder  int64
	nextDep    int64
	specByName map[string]symbolSpec
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// pct returns a random fraction between lo and hi percent, to 0.01 %.
func (g *generator) pct(lo, hi int64) decimal.Decimal {
	return decimal.New(lo*100+g.rng.Int64N((hi-lo)*100+1), -4)
}

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *generator) alnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(b)
}

func (g *generator) balance(asset string) decimal.Decimal { return g.acct.total[asset] }

func (g *generator) add(asset string, d decimal.Decimal) {
	g.acct.total[asset] = g.acct.total[asset].Add(d)
}

// walk moves every price by up to ±1 %, slightly upwards on average.
func (g *generator) walk() {
	for _, a := range []string{"BTC", "ETH", "BNB", "SOL", "ADA", "XRP", "DOGE", "LTC"} {
		step := decimal.New(99000+g.rng.Int64N(2101), -5) // 0.99000 … 1.01100
		g.usd[a] = g.usd[a].Mul(step).Round(10)
	}
}

// generate builds an account of the given size whose history runs from start to end.
func generate(rng *rand.Rand, start, end time.Time, trades, deposits, withdrawals int) *account {
	g := &generator{
		rng:        rng,
		acct:       &account{trades: map[string][]tradeRow{}, total: map[string]decimal.Decimal{}},
		usd:        map[string]decimal.Decimal{},
		nextTrade:  map[string]int64{},
		nextOrder:  1_000_000 + rng.Int64N(1_000_000),
		nextDep:    700_000_000_000_000_000 + rng.Int64N(1_000_000_000),
		specByName: map[string]symbolSpec{},
	}
	g.acct.apiKey = g.alnum(64)
	g.acct.secret = g.alnum(64)
	g.acct.uid = 100_000_000 + rng.Int64N(900_000_000)
	for a, p := range startUSD {
		g.usd[a] = dec(p)
	}
	for _, s := range symbolSpecs {
		g.specByName[s.Symbol] = s
		g.nextTrade[s.Symbol] = 10_000_000 + rng.Int64N(10_000_000)
	}

	// The first funds arrive at the very start, so that there is something to trade.
	g.deposit(start, "USDT", dec("50000"), 1)
	g.deposit(start.Add(time.Minute), "BTC", dec("1"), 1)
	g.deposit(start.Add(2*time.Minute), "ETH", dec("10"), 1)
	g.deposit(start.Add(3*time.Minute), "BNB", dec("20"), 1)

	// The rest happen at random times, in random order, up to a few hours before the end.
	kinds := make([]byte, 0, trades+deposits+withdrawals)
	for range trades {
		kinds = append(kinds, 't')
	}
	for range deposits {
		kinds = append(kinds, 'd')
	}
	for range withdrawals {
		kinds = append(kinds, 'w')
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	first, last := start.Add(time.Hour).UnixMilli(), end.Add(-4*time.Hour).UnixMilli()
	times := make([]int64, len(kinds))
	for i := range times {
		times[i] = first + rng.Int64N(last-first)
	}
	slices.Sort(times)
	recent := end.Add(-48 * time.Hour).UnixMilli()
	for i, k := range kinds {
		g.walk()
		at := time.UnixMilli(times[i]).UTC()
		switch k {
		case 't':
			g.trade(at)
		case 'd':
			g.randomDeposit(at, times[i] >= recent)
		case 'w':
			g.randomWithdrawal(at, times[i] >= recent)
		}
	}
	// The end always has one withdrawal still processing (already debited) and one deposit
	// still waiting for confirmations (not yet credited), so that pending is exercised.
	g.withdraw(end.Add(-3*time.Hour), "USDT", dec("100"), 4)
	g.deposit(end.Add(-2*time.Hour), "BTC", dec("0.05"), 0)
	return g.acct
}

var depositCoins = []struct {
	coin   string
	weight int
}{{"USDT", 40}, {"BTC", 20}, {"ETH", 20}, {"BNB", 10}, {"SOL", 5}, {"XRP", 5}}

func (g *generator) randomDeposit(at time.Time, recent bool) {
	n := g.rng.IntN(100)
	coin := "USDT"
	for _, c := range depositCoins {
		if n < c.weight {
			coin = c.coin
			break
		}
		n -= c.weight
	}
	usdValue := decimal.NewFromInt(100 + g.rng.Int64N(4900))
	amount := usdValue.DivRound(g.usd[coin], 8)
	if !amount.IsPositive() {
		return
	}
	status := 1 // success
	switch r := g.rng.IntN(100); {
	case r < 2:
		status = 7 // wrong deposit: never credited
	case recent && r < 30:
		status = 6 // credited but cannot withdraw yet
	}
	g.deposit(at, coin, amount, status)
}

// deposit records a deposit and credits it unless its status says it is not (yet) credited.
func (g *generator) deposit(at time.Time, coin string, amount decimal.Decimal, status int) {
	g.nextDep += 1 + g.rng.Int64N(1_000_000)
	network := networkOf[coin]
	row := depositRow{
		ID:           strconv.FormatInt(g.nextDep, 10),
		Amount:       amount.String(),
		Coin:         coin,
		Network:      network,
		Status:       status,
		Address:      "addr-" + network + "-" + g.hex(24),
		TxID:         "0x" + g.hex(64),
		InsertTime:   at.UnixMilli(),
		ConfirmTimes: "12/12",
	}
	if g.rng.IntN(20) == 0 {
		row.TransferType = 1 // internal transfer between Binance users: no chain transaction
		row.TxID = "Internal transfer " + strconv.FormatInt(g.rng.Int64N(1e12), 10)
	}
	if status == 1 || status == 6 {
		row.CompleteTime = at.Add(10 * time.Minute).UnixMilli()
		g.add(coin, amount)
	} else if status == 0 {
		row.ConfirmTimes = "1/12"
	}
	g.acct.deposits = append(g.acct.deposits, row)
}

var withdrawCoins = []string{"BTC", "ETH", "USDT", "BNB", "SOL", "XRP", "LTC", "ADA", "DOGE"}

func (g *generator) randomWithdrawal(at time.Time, recent bool) {
	coin := withdrawCoins[g.rng.IntN(len(withdrawCoins))]
	fee := dec(withdrawFee[coin])
	amount := g.balance(coin).Mul(g.pct(10, 50)).Truncate(8).Sub(fee)
	if !amount.IsPositive() {
		return
	}
	status := 6 // completed
	switch r := g.rng.IntN(100); {
	case r < 5:
		status = 1 // cancelled
	case r < 7:
		status = 5 // failure
	case recent:
		status = 4 // processing
	}
	g.withdraw(at, coin, amount, status)
}

// withdraw records a withdrawal; Binance debits amount and fee when the withdrawal is
// requested, and gives them back if it is cancelled, rejected or fails.
func (g *generator) withdraw(at time.Time, coin string, amount decimal.Decimal, status int) {
	fee := dec(withdrawFee[coin])
	network := networkOf[coin]
	row := withdrawalRow{
		ID:             g.hex(32),
		Amount:         amount.String(),
		TransactionFee: fee.String(),
		Coin:           coin,
		Status:         status,
		Address:        "addr-" + network + "-" + g.hex(24),
		ApplyTime:      at.UTC().Format(applyTimeLayout),
		Network:        network,
		applyMillis:    at.Truncate(time.Second).UnixMilli(),
	}
	switch status {
	case 6:
		row.TxID = "0x" + g.hex(64)
		row.ConfirmNo = 12
		row.CompleteTime = at.Add(30 * time.Minute).UTC().Format(applyTimeLayout)
		g.add(coin, amount.Add(fee).Neg())
	case 0, 2, 4:
		g.add(coin, amount.Add(fee).Neg())
	case 1, 3, 5:
		row.Info = "The withdrawal did not complete."
	}
	g.acct.withdrawals = append(g.acct.withdrawals, row)
}

// price returns the current price of a symbol in its quote asset, at the symbol's precision.
func (g *generator) price(s symbolSpec) decimal.Decimal {
	return g.usd[s.Base].DivRound(g.usd[s.Quote], s.PriceDecimals)
}

func (g *generator) trade(at time.Time) {
	var traded []symbolSpec
	for _, s := range symbolSpecs {
		if s.Traded {
			traded = append(traded, s)
		}
	}
	s := traded[g.rng.IntN(len(traded))]
	price := g.price(s)
	if !price.IsPositive() {
		return
	}
	buy := g.rng.IntN(2) == 0
	var qty, quoteQty decimal.Decimal
	if buy {
		spend := g.balance(s.Quote).Mul(g.pct(2, 20))
		qty = spend.Div(price).Truncate(s.QtyDecimals)
		quoteQty = qty.Mul(price).Truncate(8)
		if quoteQty.GreaterThan(g.balance(s.Quote)) {
			return
		}
	} else {
		qty = g.balance(s.Base).Mul(g.pct(5, 50)).Truncate(s.QtyDecimals)
		quoteQty = qty.Mul(price).Truncate(8)
	}
	if !qty.IsPositive() || !quoteQty.IsPositive() {
		return
	}
	received := s.Base
	receivedQty := qty
	if !buy {
		received, receivedQty = s.Quote, quoteQty
	}
	commissionAsset := received
	commission := receivedQty.Mul(dec("0.001")).Truncate(8)
	if g.rng.IntN(4) == 0 { // pays with BNB at the discounted rate
		bnbFee := quoteQty.Mul(g.usd[s.Quote]).Div(g.usd["BNB"]).Mul(dec("0.00075")).Truncate(8)
		need := bnbFee
		if !buy && s.Base == "BNB" {
			need = need.Add(qty)
		}
		if bnbFee.IsPositive() && need.LessThanOrEqual(g.balance("BNB")) {
			commissionAsset, commission = "BNB", bnbFee
		}
	}
	if buy {
		g.add(s.Quote, quoteQty.Neg())
		g.add(s.Base, qty)
	} else {
		g.add(s.Base, qty.Neg())
		g.add(s.Quote, quoteQty)
	}
	g.add(commissionAsset, commission.Neg())
	g.nextTrade[s.Symbol] += 1 + g.rng.Int64N(1000)
	g.nextOrder += 1 + g.rng.Int64N(100)
	g.acct.trades[s.Symbol] = append(g.acct.trades[s.Symbol], tradeRow{
		Symbol:          s.Symbol,
		ID:              g.nextTrade[s.Symbol],
		OrderID:         g.nextOrder,
		OrderListID:     -1,
		Price:           price.StringFixed(s.PriceDecimals),
		Qty:             qty.StringFixed(8),
		QuoteQty:        quoteQty.StringFixed(8),
		Commission:      commission.StringFixed(8),
		CommissionAsset: commissionAsset,
		Time:            at.UnixMilli(),
		IsBuyer:         buy,
		IsMaker:         g.rng.IntN(2) == 0,
		IsBestMatch:     true,
	})
}

// String describes an account's size, for test logs.
func (a *account) String() string {
	n := 0
	for _, t := range a.trades {
		n += len(t)
	}
	return fmt.Sprintf("%d trades in %d symbols, %d deposits, %d withdrawals", n, len(a.trades), len(a.deposits), len(a.withdrawals))
}
