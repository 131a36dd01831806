package kraken

import (
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// LedgerEntry is one row of Kraken's Ledgers answer. Amount is signed; Fee is paid in the
// row's asset on top of it (balance after = balance before + amount − fee).
type LedgerEntry struct {
	ID      string          `json:"-"`
	RefID   string          `json:"refid"`
	Time    json.Number     `json:"time"` // Unix seconds with four decimals, kept exact
	Type    string          `json:"type"`
	Subtype string          `json:"subtype"`
	Aclass  string          `json:"aclass"`
	Asset   string          `json:"asset"`
	Amount  decimal.Decimal `json:"amount"`
	Fee     decimal.Decimal `json:"fee"`
	Balance decimal.Decimal `json:"balance"`
}

// when returns the row's time as an exact decimal number of seconds.
func (e LedgerEntry) when() decimal.Decimal {
	d, err := decimal.NewFromString(e.Time.String())
	if err != nil {
		return decimal.Zero
	}
	return d
}

// legacyCodes are Kraken's four-letter codes of old assets and fiat (X… crypto, Z… fiat),
// and other codes that differ from the common symbol.
var legacyCodes = map[string]string{
	"XXBT": "BTC", "XBT": "BTC", "XBT.M": "BTC", "XETH": "ETH", "ETH2": "ETH", "XXDG": "DOGE", "XDG": "DOGE",
	"XLTC": "LTC", "XXRP": "XRP", "XXLM": "XLM", "XXMR": "XMR", "XZEC": "ZEC", "XETC": "ETC",
	"XREP": "REP", "XMLN": "MLN", "XICN": "ICN", "XNMC": "NMC", "XXVN": "XVN",
	"ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP", "ZCAD": "CAD", "ZJPY": "JPY", "ZAUD": "AUD",
	"ZCHF": "CHF", "CHF": "CHF", "ZKRW": "KRW",
}

// stakedSuffixes mark balances that are not spot: .S staked, .M opt-in rewards, .B bonded
// or yield-bearing, .F Kraken Rewards (flexible earn), .P parachain. All count as staked.
var stakedSuffixes = []string{".S", ".M", ".B", ".F", ".P"}

// lockupCode matches codes of bonded staking with a lock-up in days, such as DOT28.S.
var lockupCode = regexp.MustCompile(`^([A-Z]{3,})(07|14|21|28|60|90)$`)

// AssetSymbol maps a Kraken asset code to the common symbol and says whether the code is a
// staked (or rewards-earning) balance of it: XXBT → BTC, ZUSD → USD, DOT.S → DOT staked,
// ETH2.S → ETH staked, USDT.F → USDT staked, DOT28.S → DOT staked.
func AssetSymbol(code string) (symbol string, staked bool) {
	base := code
	for _, s := range stakedSuffixes {
		if strings.HasSuffix(code, s) {
			base, staked = strings.TrimSuffix(code, s), true
			break
		}
	}
	// .HOLD is a balance held for a pending order or review: the asset itself.
	base = strings.TrimSuffix(base, ".HOLD")
	if sym, ok := legacyCodes[base]; ok {
		return sym, staked || base == "ETH2"
	}
	if m := lockupCode.FindStringSubmatch(base); m != nil && staked {
		base = m[1]
		if sym, ok := legacyCodes[base]; ok {
			base = sym
		}
	}
	return base, staked
}

var assetNames = map[string]string{
	"BTC": "Bitcoin", "ETH": "Ethereum", "DOGE": "Dogecoin", "DOT": "Polkadot", "USDT": "Tether",
	"USDC": "USD Coin", "SOL": "Solana", "ADA": "Cardano", "XRP": "XRP", "LTC": "Litecoin",
	"USD": "US Dollar", "EUR": "Euro", "GBP": "British Pound", "CAD": "Canadian Dollar",
	"JPY": "Japanese Yen", "CHF": "Swiss Franc", "AUD": "Australian Dollar",
}

// NormalizeBalances turns Kraken's Balance answer into one position per asset: spot codes
// are Available, staked and rewards codes (.S, .M, .B, .F) are Staked, and Quantity is their
// sum. Order holds are not reported by Balance, so Locked stays zero.
func NormalizeBalances(connectionID string, balances map[string]decimal.Decimal, now time.Time) []opencalico.Position {
	bySymbol := map[string]*opencalico.Position{}
	for code, amount := range balances {
		sym, staked := AssetSymbol(code)
		p := bySymbol[sym]
		if p == nil {
			p = &opencalico.Position{ConnectionID: connectionID, ProviderID: ProviderID, AssetSymbol: sym,
				AssetName: assetNames[sym], UpdatedAt: now}
			bySymbol[sym] = p
		}
		p.Quantity = p.Quantity.Add(amount)
		if staked {
			p.Staked = p.Staked.Add(amount)
		} else {
			p.Available = p.Available.Add(amount)
		}
	}
	out := make([]opencalico.Position, 0, len(bySymbol))
	for _, p := range bySymbol {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AssetSymbol < out[j].AssetSymbol })
	return out
}

// quoteRank orders assets by how much they serve as the quote of a trade: fiat first, then
// stablecoins, then BTC and ETH. A trade whose input is the better quote is a buy.
func quoteRank(sym string) int {
	switch sym {
	case "USD", "EUR", "GBP", "CAD", "JPY", "CHF", "AUD", "KRW":
		return 4
	case "USDT", "USDC", "DAI", "PYUSD", "EURT":
		return 3
	case "BTC":
		return 2
	case "ETH":
		return 1
	}
	return 0
}

// NormalizeGroup turns the ledger rows of one refid into one transaction. Every row's
// amount becomes a leg (negative: input, positive: output) and every fee a fee item in the
// row's asset, so that outputs − inputs − fees equals the rows' effect on the balances
// whatever the category.
func NormalizeGroup(connectionID string, rows []LedgerEntry) *opencalico.Transaction {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b LedgerEntry) int {
		// Money out before money in at one instant, so the provider type reads "spend+receive".
		return cmp.Or(a.when().Cmp(b.when()), a.Amount.Sign()-b.Amount.Sign(), strings.Compare(a.ID, b.ID))
	})
	first := rows[0]
	t := &opencalico.Transaction{
		ConnectionID: connectionID,
		ProviderID:   ProviderID,
		ExternalID:   first.RefID,
		Status:       opencalico.TxConfirmed, // ledger rows are booked movements
		Timestamp:    unixTime(first.when()),
	}
	if t.ExternalID == "" {
		t.ExternalID = first.ID
	}
	var words []string
	types := map[string]bool{}
	spotOut, spotIn, stakedOut, stakedIn := false, false, false, false
	for _, r := range rows {
		sym, staked := AssetSymbol(r.Asset)
		word := r.Type
		if r.Subtype != "" {
			word += ":" + r.Subtype
		}
		if !slices.Contains(words, word) {
			words = append(words, word)
		}
		types[r.Type] = true
		switch {
		case r.Amount.IsNegative():
			t.Inputs = append(t.Inputs, opencalico.Leg{AssetSymbol: sym, Amount: r.Amount.Neg()})
			spotOut, stakedOut = spotOut || !staked, stakedOut || staked
		case r.Amount.IsPositive():
			t.Outputs = append(t.Outputs, opencalico.Leg{AssetSymbol: sym, Amount: r.Amount})
			spotIn, stakedIn = spotIn || !staked, stakedIn || staked
		}
		if r.Fee.IsPositive() {
			t.Fees = append(t.Fees, opencalico.Fee{AssetSymbol: sym, Amount: r.Fee, Kind: feeKind(r.Type)})
		} else if r.Fee.IsNegative() {
			// A refunded fee is money in: an output, so the balance still reconciles.
			t.Outputs = append(t.Outputs, opencalico.Leg{AssetSymbol: sym, Amount: r.Fee.Neg()})
		}
	}
	t.Categorization.ProviderType = strings.Join(words, "+")
	t.Type = shape(t)
	in, out := len(t.Inputs) > 0, len(t.Outputs) > 0
	cat := &t.Categorization
	switch {
	case (spotOut && stakedIn && !spotIn && !stakedOut) || (types["transfer"] && hasSubtype(rows, "spottostaking", "stakingfromspot")) ||
		(types["earn"] && hasSubtype(rows, "allocation", "autoallocation")):
		cat.Category = opencalico.CategoryStaking
	case (stakedOut && spotIn && !spotOut && !stakedIn) || (types["transfer"] && hasSubtype(rows, "stakingtospot", "spotfromstaking")) ||
		(types["earn"] && hasSubtype(rows, "deallocation")):
		cat.Category = opencalico.CategoryUnstaking
	case types["staking"] || (types["earn"] && hasSubtype(rows, "reward")):
		cat.Category = opencalico.CategoryStakingReward
		if !in && out {
			t.Type = opencalico.TypeOutputOnly
		}
	case types["trade"] || types["spend"] || types["receive"] || types["conversion"] || types["sale"]:
		switch {
		case in && out:
			cat.Category = opencalico.CategoryTrade
			cat.Subcategory = tradeSide(t.Inputs[0].AssetSymbol, t.Outputs[0].AssetSymbol)
		case types["spend"] && in:
			cat.Category = opencalico.CategoryPayment // a spend without its receive: card or purchase
		default:
			// One leg of a trade alone (the other booked under another refid).
			cat.Category = opencalico.CategoryTrade
		}
	case types["deposit"] && out && !in:
		cat.Category = opencalico.CategoryDeposit
		t.Type = opencalico.TypeReceive
	case types["withdrawal"] && in && !out:
		cat.Category = opencalico.CategoryWithdrawal
		t.Type = opencalico.TypeSend
	case types["withdrawal"] && out && !in:
		// A withdrawal returned or cancelled after booking.
		cat.Category, cat.Subcategory = opencalico.CategoryWithdrawal, "returned"
		t.Type = opencalico.TypeReceive
	case types["margin"] || types["rollover"] || types["settled"]:
		cat.Category = opencalico.CategoryMargin
	case types["dividend"]:
		cat.Category = opencalico.CategoryIncome
	case types["credit"]:
		cat.Category = opencalico.CategoryBonus
	case types["transfer"]:
		// Futures wallet moves, airdrops and fork credits.
		cat.Category = opencalico.CategoryTransfer
		if hasSubtype(rows, "airdrop") {
			cat.Category = opencalico.CategoryAirdrop
		}
	case types["nfttrade"] || types["nftcreatorfee"] || types["nftrebate"]:
		cat.Category = opencalico.CategoryNFT
	case types["adjustment"]:
		cat.Category = opencalico.CategoryOther
	default:
		cat.Category = opencalico.CategoryOther
		t.Type = opencalico.TypeUncategorized
	}
	return t
}

// shape is the type that the legs alone imply.
func shape(t *opencalico.Transaction) opencalico.TransactionType {
	in, out := len(t.Inputs) > 0, len(t.Outputs) > 0
	switch {
	case in && out:
		return opencalico.TypeInputOutput
	case in:
		return opencalico.TypeInputOnly
	case out:
		return opencalico.TypeOutputOnly
	}
	return opencalico.TypeUncategorized // a fee alone, such as a margin rollover
}

func hasSubtype(rows []LedgerEntry, subtypes ...string) bool {
	for _, r := range rows {
		if slices.Contains(subtypes, r.Subtype) {
			return true
		}
	}
	return false
}

// tradeSide says buy when the asset paid is the better quote (fiat before stablecoins
// before BTC before ETH), sell when the asset received is, and swap between equals.
func tradeSide(paid, got string) string {
	switch rp, rg := quoteRank(paid), quoteRank(got); {
	case rp > rg:
		return "buy"
	case rg > rp:
		return "sell"
	}
	return "swap"
}

func feeKind(rowType string) opencalico.FeeKind {
	switch rowType {
	case "trade", "spend", "receive", "conversion", "sale", "margin":
		return opencalico.FeeTrading
	case "withdrawal":
		return opencalico.FeeWithdrawal
	}
	return opencalico.FeeOther
}

// unixTime converts exact decimal seconds to a time.
func unixTime(sec decimal.Decimal) time.Time {
	whole := sec.Floor()
	nanos := sec.Sub(whole).Shift(9).Round(0).IntPart()
	return time.Unix(whole.IntPart(), nanos).UTC()
}
