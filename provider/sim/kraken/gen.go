package kraken

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// tick is the resolution of Kraken ledger times: the API prints them as seconds with four
// decimals (1688464484.1787), so the simulator keeps them as integer ten-thousandths of a
// second and compares them exactly.
type tick int64

const ticksPerSecond = 10000

func tickOf(t time.Time) tick {
	return tick(t.UnixNano() / (int64(time.Second) / ticksPerSecond))
}

func (t tick) String() string {
	return fmt.Sprintf("%d.%04d", int64(t)/ticksPerSecond, int64(t)%ticksPerSecond)
}

// ledgerRow is one row of the Ledgers answer.
type ledgerRow struct {
	seq     int // insertion order: ties of time are ordered by it
	id      string
	refid   string
	time    tick
	typ     string
	subtype string
	asset   string
	amount  decimal.Decimal // signed
	fee     decimal.Decimal
	balance decimal.Decimal // of the asset after this row
}

// assetInfo describes a Kraken asset code: its display decimals and a plausible size of a
// deposit, withdrawal fee and USD price used to make believable amounts.
type assetInfo struct {
	decimals int32
	price    float64 // in USD, to size amounts; never reported
	wdFee    string  // withdrawal fee in the asset
}

var assets = map[string]assetInfo{
	"ZUSD": {4, 1, "5"},
	"ZEUR": {4, 1.08, "0.09"},
	"XXBT": {10, 40000, "0.00015"},
	"XETH": {10, 2500, "0.0035"},
	"XXDG": {8, 0.1, "4"},
	"DOT":  {10, 6, "0.05"},
	"USDT": {8, 1, "2.5"},
	// Staked and earn variants share the decimals of their base asset.
	"DOT.S":  {10, 6, ""},
	"ETH2.S": {10, 2500, ""},
	"USDT.F": {8, 1, ""},
}

// pair is a spot market: base and quote asset codes and the Kraken pair name.
type pair struct{ name, base, quote string }

var pairs = []pair{
	{"XXBTZUSD", "XXBT", "ZUSD"},
	{"XETHZUSD", "XETH", "ZUSD"},
	{"XETHXXBT", "XETH", "XXBT"},
	{"XXDGZUSD", "XXDG", "ZUSD"},
	{"DOTUSD", "DOT", "ZUSD"},
	{"XXBTZEUR", "XXBT", "ZEUR"},
	{"USDTZUSD", "USDT", "ZUSD"},
	{"DOTEUR", "DOT", "ZEUR"},
}

// account is one seeded Kraken account: its key, its ledger and the running balances that
// the ledger implies.
type account struct {
	apiKey string
	secret []byte
	rows   []*ledgerRow // in booking order: rows[i].seq == i
	// byTime holds the same rows ascending by (time, seq), kept sorted as rows are booked,
	// so that Ledgers finds its window by binary search instead of scanning and sorting the
	// whole ledger on every call.
	byTime    []*ledgerRow
	balances  map[string]decimal.Decimal
	rng       *rand.Rand
	ids       map[string]bool
	lastNonce int64
	revoked   bool
	counter   float64 // rate-limit counter
	counterAt time.Time
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// newID makes a Kraken-looking id such as "L4UESK-KG3EQ-UFO4T5" starting with prefix,
// unique within the account.
func (a *account) newID(prefix byte) string {
	for {
		b := make([]byte, 0, 19)
		b = append(b, prefix)
		for i := 1; i < 17; i++ {
			if i == 6 || i == 11 {
				b = append(b, '-')
			}
			b = append(b, idAlphabet[a.rng.IntN(len(idAlphabet))])
		}
		id := string(b)
		if !a.ids[id] {
			a.ids[id] = true
			return id
		}
	}
}

// amountOf makes an amount of asset worth about usd dollars, rounded to its decimals.
func (a *account) amountOf(asset string, usd float64) decimal.Decimal {
	info := assets[asset]
	return decimal.NewFromFloat(usd / info.price).Round(info.decimals)
}

// fraction returns a random part (5–60 %) of x, rounded to the asset's decimals.
func (a *account) fraction(asset string, x decimal.Decimal) decimal.Decimal {
	f := decimal.NewFromFloat(0.05 + 0.55*a.rng.Float64())
	return x.Mul(f).RoundDown(assets[asset].decimals)
}

// add appends a ledger row and updates the running balance: balance += amount − fee.
func (a *account) add(refid string, t tick, typ, subtype, asset string, amount, fee decimal.Decimal) {
	bal := a.balances[asset].Add(amount).Sub(fee)
	if bal.IsNegative() {
		panic(fmt.Sprintf("kraken sim: generated a negative %s balance", asset))
	}
	a.balances[asset] = bal
	row := &ledgerRow{
		seq: len(a.rows), id: a.newID('L'), refid: refid, time: t, typ: typ, subtype: subtype,
		asset: asset, amount: amount, fee: fee, balance: bal,
	}
	a.rows = append(a.rows, row)
	// The new row has the highest seq, so it goes after every row of its time or earlier.
	// Rows are booked almost in time order (the second leg of a staking transfer comes a
	// few seconds after the first; AppendLate goes back further, rarely), so the insertion
	// moves few rows.
	i := sort.Search(len(a.byTime), func(j int) bool { return a.byTime[j].time > t })
	a.byTime = slices.Insert(a.byTime, i, row)
}

// enough reports whether the account holds at least x of asset.
func (a *account) enough(asset string, x decimal.Decimal) bool {
	return x.IsPositive() && a.balances[asset].GreaterThanOrEqual(x)
}

var zero = decimal.Zero

// event appends one economic event (one refid, one to a few rows) at time t. It picks a
// kind at random and falls back to a deposit when the balances do not allow it, so that no
// balance ever goes negative.
func (a *account) event(t tick) {
	roll := a.rng.IntN(100)
	switch {
	case roll < 12:
		a.deposit(t)
	case roll < 20:
		if !a.withdrawal(t) {
			a.deposit(t)
		}
	case roll < 62:
		if !a.trade(t) {
			a.deposit(t)
		}
	case roll < 67:
		if !a.instantBuy(t) {
			a.deposit(t)
		}
	case roll < 72:
		if !a.stake(t) {
			a.deposit(t)
		}
	case roll < 75:
		if !a.unstake(t) {
			a.deposit(t)
		}
	case roll < 93:
		if !a.reward(t) {
			a.deposit(t)
		}
	case roll < 95:
		if !a.earnAllocation(t) {
			a.deposit(t)
		}
	case roll < 97:
		if !a.margin(t) {
			a.deposit(t)
		}
	default:
		if !a.adjustment(t) {
			a.deposit(t)
		}
	}
}

var depositAssets = []string{"ZUSD", "ZUSD", "ZUSD", "ZEUR", "XXBT", "XETH", "DOT", "USDT", "XXDG"}

func (a *account) deposit(t tick) {
	asset := depositAssets[a.rng.IntN(len(depositAssets))]
	amount := a.amountOf(asset, 200+a.rng.Float64()*5000)
	fee := zero
	if asset == "ZEUR" && a.rng.IntN(3) == 0 {
		fee = decimal.RequireFromString("0.0900") // SEPA deposit fee on some banks
	}
	a.add(a.newID('Q'), t, "deposit", "", asset, amount, fee)
}

func (a *account) withdrawal(t tick) bool {
	asset := depositAssets[a.rng.IntN(len(depositAssets))]
	fee := decimal.RequireFromString(assets[asset].wdFee)
	avail := a.balances[asset].Sub(fee)
	if !avail.IsPositive() {
		return false
	}
	amount := a.fraction(asset, avail)
	if asset == "XXBT" {
		// Kraken books bitcoin to 10 decimals, but what leaves on chain is whole satoshis.
		amount = amount.Truncate(8)
	}
	if !amount.IsPositive() {
		return false
	}
	a.add(a.newID('A'), t, "withdrawal", "", asset, amount.Neg(), fee)
	return true
}

func (a *account) trade(t tick) bool {
	p := pairs[a.rng.IntN(len(pairs))]
	baseInfo, quoteInfo := assets[p.base], assets[p.quote]
	price := baseInfo.price / quoteInfo.price * (0.7 + 0.6*a.rng.Float64())
	refid := a.newID('T')
	feeRate := decimal.RequireFromString("0.0026")
	feeMode := a.rng.IntN(10) // 0–7 fee in quote, 8 in base, 9 on both legs
	if a.rng.IntN(2) == 0 {
		// Buy: quote out, base in.
		cost := a.fraction(p.quote, a.balances[p.quote])
		if cost.LessThan(decimal.New(1, -quoteInfo.decimals+2)) {
			return false
		}
		volume := cost.Div(decimal.NewFromFloat(price)).Round(baseInfo.decimals)
		quoteFee, baseFee := cost.Mul(feeRate).Round(quoteInfo.decimals), zero
		if feeMode == 8 {
			quoteFee, baseFee = zero, volume.Mul(feeRate).Round(baseInfo.decimals)
		} else if feeMode == 9 {
			baseFee = volume.Mul(decimal.RequireFromString("0.0001")).Round(baseInfo.decimals)
		}
		if !volume.IsPositive() || !a.enough(p.quote, cost.Add(quoteFee)) {
			return false
		}
		a.add(refid, t, "trade", "", p.quote, cost.Neg(), quoteFee)
		a.add(refid, t, "trade", "", p.base, volume, baseFee)
		return true
	}
	// Sell: base out, quote in.
	volume := a.fraction(p.base, a.balances[p.base])
	proceeds := volume.Mul(decimal.NewFromFloat(price)).Round(quoteInfo.decimals)
	if !volume.IsPositive() || !proceeds.IsPositive() {
		return false
	}
	quoteFee, baseFee := proceeds.Mul(feeRate).Round(quoteInfo.decimals), zero
	if feeMode == 8 {
		quoteFee, baseFee = zero, volume.Mul(feeRate).Round(baseInfo.decimals)
	} else if feeMode == 9 {
		baseFee = volume.Mul(decimal.RequireFromString("0.0001")).Round(baseInfo.decimals)
	}
	if !a.enough(p.base, volume.Add(baseFee)) {
		return false
	}
	a.add(refid, t, "trade", "", p.base, volume.Neg(), baseFee)
	a.add(refid, t, "trade", "", p.quote, proceeds, quoteFee)
	return true
}

// instantBuy is Kraken's "Buy Crypto" button: a spend row and a receive row under one refid.
func (a *account) instantBuy(t tick) bool {
	spend, get := "ZUSD", []string{"XXBT", "XETH", "DOT"}[a.rng.IntN(3)]
	cost := a.fraction(spend, a.balances[spend])
	fee := cost.Mul(decimal.RequireFromString("0.015")).Round(4)
	if !cost.GreaterThan(decimal.NewFromInt(1)) || !a.enough(spend, cost.Add(fee)) {
		return false
	}
	volume := a.amountOf(get, cost.InexactFloat64()*(0.9+0.2*a.rng.Float64()))
	if !volume.IsPositive() {
		return false
	}
	refid := a.newID('T')
	a.add(refid, t, "spend", "", spend, cost.Neg(), fee)
	a.add(refid, t, "receive", "", get, volume, zero)
	return true
}

// stakeTargets maps a spot asset to its staked variant.
var stakeTargets = map[string]string{"DOT": "DOT.S", "XETH": "ETH2.S"}

// stake moves spot to staked: two transfer rows under one refid, the second a few seconds
// after the first, as Kraken books them.
func (a *account) stake(t tick) bool {
	spot := []string{"DOT", "XETH"}[a.rng.IntN(2)]
	x := a.fraction(spot, a.balances[spot])
	if !x.IsPositive() {
		return false
	}
	refid := a.newID('B')
	a.add(refid, t, "transfer", "spottostaking", spot, x.Neg(), zero)
	a.add(refid, t+tick(1+a.rng.IntN(20))*ticksPerSecond, "transfer", "stakingfromspot", stakeTargets[spot], x, zero)
	return true
}

func (a *account) unstake(t tick) bool {
	// ETH2.S could not be unstaked for years; only DOT.S is.
	x := a.fraction("DOT.S", a.balances["DOT.S"])
	if !x.IsPositive() {
		return false
	}
	refid := a.newID('B')
	a.add(refid, t, "transfer", "stakingtospot", "DOT.S", x.Neg(), zero)
	a.add(refid, t+tick(1+a.rng.IntN(20))*ticksPerSecond, "transfer", "spotfromstaking", "DOT", x, zero)
	return true
}

func (a *account) reward(t tick) bool {
	staked := []string{"DOT.S", "ETH2.S", "USDT.F"}[a.rng.IntN(3)]
	bal := a.balances[staked]
	r := bal.Mul(decimal.NewFromFloat(0.0005 + 0.002*a.rng.Float64())).Round(assets[staked].decimals)
	if !r.IsPositive() {
		return false
	}
	if staked == "USDT.F" {
		a.add(a.newID('S'), t, "earn", "reward", staked, r, zero)
	} else {
		a.add(a.newID('S'), t, "staking", "", staked, r, zero)
	}
	return true
}

// earnAllocation moves USDT into or out of Kraken Rewards (USDT.F) with "earn" rows.
func (a *account) earnAllocation(t tick) bool {
	refid := a.newID('E')
	if a.rng.IntN(3) > 0 {
		x := a.fraction("USDT", a.balances["USDT"])
		if !x.IsPositive() {
			return false
		}
		a.add(refid, t, "earn", "allocation", "USDT", x.Neg(), zero)
		a.add(refid, t, "earn", "allocation", "USDT.F", x, zero)
		return true
	}
	x := a.fraction("USDT.F", a.balances["USDT.F"])
	if !x.IsPositive() {
		return false
	}
	a.add(refid, t, "earn", "deallocation", "USDT.F", x.Neg(), zero)
	a.add(refid, t, "earn", "deallocation", "USDT", x, zero)
	return true
}

// margin books a rollover fee (a fee-only row) or a settled margin profit or loss.
func (a *account) margin(t tick) bool {
	if a.rng.IntN(2) == 0 {
		fee := decimal.NewFromFloat(0.5 + 3*a.rng.Float64()).Round(4)
		if !a.enough("ZUSD", fee) {
			return false
		}
		a.add(a.newID('M'), t, "rollover", "", "ZUSD", zero, fee)
		return true
	}
	pnl := decimal.NewFromFloat(-50 + 120*a.rng.Float64()).Round(4)
	if pnl.IsZero() || (pnl.IsNegative() && !a.enough("ZUSD", pnl.Neg())) {
		return false
	}
	a.add(a.newID('M'), t, "margin", "", "ZUSD", pnl, zero)
	return true
}

// adjustment is a small correction by Kraken (dust, a fork credit).
func (a *account) adjustment(t tick) bool {
	asset := []string{"XXBT", "XETH", "XXDG"}[a.rng.IntN(3)]
	x := a.amountOf(asset, 0.01+a.rng.Float64())
	if a.rng.IntN(2) == 0 {
		if !a.enough(asset, x) {
			return false
		}
		x = x.Neg()
	}
	if x.IsZero() {
		return false
	}
	a.add(a.newID('J'), t, "adjustment", "", asset, x, zero)
	return true
}

// generate fills the account with n events spread over [from, to): mostly far apart, some
// sharing one instant (several orders filled at once), so that page boundaries fall in
// every possible place.
func (a *account) generate(n int, from, to time.Time) {
	span := to.Sub(from)
	gap := span / time.Duration(n+1)
	t := tickOf(from)
	for i := 0; i < n; i++ {
		if i == 0 || a.rng.IntN(20) != 0 {
			t += tick(a.rng.Int64N(int64(2*gap/time.Second)+1)*ticksPerSecond + a.rng.Int64N(ticksPerSecond))
		}
		a.event(t)
	}
}
