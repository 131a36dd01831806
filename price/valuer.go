package price

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
)

// Options configure a Valuer.
type Options struct {
	Source Source
	Store  *store.Store
	Clock  provider.Clock // nil: the wall clock
	// Currencies are the fiat currencies whose exchange rates are kept, so that readers may
	// ask for values in them (default USD, EUR, GBP). USD, the reference, is always included.
	Currencies []string
	// RefCoin is the coin whose quotes in each currency give the exchange rates (default
	// "bitcoin": quoted in every currency, every day).
	RefCoin string
	// Decimals is the scale values are rounded to, half away from zero (default 8).
	Decimals int32
	// Tolerance is how far in time a price point may be from what it values (default 25 h:
	// daily points value the whole day they start and the hour after).
	Tolerance time.Duration
}

// Valuer keeps the price cache and values positions and transactions.
type Valuer struct {
	src        Source
	st         *store.Store
	clock      provider.Clock
	mapper     *Mapper
	currencies []string // lower case, usd first
	ref        string
	decimals   int32
	tol        time.Duration

	mu     sync.Mutex
	mapped map[string]string // resolved asset keys, positive and negative
}

// New returns a Valuer.
func New(opts Options) *Valuer {
	if opts.Clock == nil {
		opts.Clock = provider.RealClock{}
	}
	if opts.Currencies == nil {
		opts.Currencies = []string{"USD", "EUR", "GBP"}
	}
	if opts.RefCoin == "" {
		opts.RefCoin = "bitcoin"
	}
	if opts.Decimals <= 0 {
		opts.Decimals = 8
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = 25 * time.Hour
	}
	curs := []string{"usd"}
	for _, c := range opts.Currencies {
		if c = strings.ToLower(c); c != "usd" && !contains(curs, c) {
			curs = append(curs, c)
		}
	}
	return &Valuer{src: opts.Source, st: opts.Store, clock: opts.Clock, mapper: NewMapper(opts.Source, opts.Clock),
		currencies: curs, ref: opts.RefCoin, decimals: opts.Decimals, tol: opts.Tolerance, mapped: map[string]string{}}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Currencies returns the currencies values can be asked in, upper case.
func (v *Valuer) Currencies() []string {
	out := make([]string, len(v.currencies))
	for i, c := range v.currencies {
		out[i] = strings.ToUpper(c)
	}
	return out
}

// ---- Recording what a sync touched ----

// NeedsOf returns the (asset, day) pairs of transactions of a connection: each leg's and
// fee's asset on the transaction's UTC day, and the exchange rate of every kept currency.
func (v *Valuer) NeedsOf(connectionID string, txns []*opencalico.Transaction) []store.PriceNeed {
	seen := map[store.PriceNeed]bool{}
	var out []store.PriceNeed
	add := func(key string, day int64) {
		n := store.PriceNeed{AssetKey: key, Day: day, ConnectionID: connectionID}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, t := range txns {
		day := store.Day(t.Timestamp)
		for _, k := range keysOfTransaction(t) {
			add(k, day)
		}
		for _, c := range v.currencies[1:] {
			add(FXKey(c), day)
		}
	}
	return out
}

// QueueTx records, in the caller's database transaction (the one storing the page), the
// pairs NeedsOf returns; Fill fetches what is missing.
func (v *Valuer) QueueTx(ctx context.Context, tx *sql.Tx, connectionID string, txns []*opencalico.Transaction) error {
	return v.st.AddPriceNeedsTx(ctx, tx, v.NeedsOf(connectionID, txns))
}

// Queue is QueueTx in a transaction of its own.
func (v *Valuer) Queue(ctx context.Context, connectionID string, txns []*opencalico.Transaction) error {
	return v.st.AddPriceNeeds(ctx, v.NeedsOf(connectionID, txns))
}

// TrackPositions makes RefreshCurrent keep current prices of the positions' assets.
func (v *Valuer) TrackPositions(ctx context.Context, ps []opencalico.Position) error {
	keys := make([]string, 0, len(ps))
	for _, p := range ps {
		keys = append(keys, AssetKey(p.AssetSymbol, p.AssetID))
	}
	return v.st.TrackPriceAssets(ctx, keys)
}

// ---- Mapping ----

// resolve maps keys to price ids: Static, then this process's memory, then the store, then
// the source (whose answers are saved). With online false, the source is not asked and keys
// not known yet are absent from the result.
func (v *Valuer) resolve(ctx context.Context, keys []string, online bool) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	var rest []string
	v.mu.Lock()
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		if id, ok := Static(k); ok {
			out[k] = id
		} else if id, ok := v.mapped[k]; ok {
			out[k] = id
		} else {
			out[k] = ""
			rest = append(rest, k)
		}
	}
	v.mu.Unlock()
	for _, k := range rest {
		delete(out, k)
	}
	if len(rest) == 0 {
		return out, nil
	}
	stored, err := v.st.PriceAssets(ctx, rest)
	if err != nil {
		return nil, err
	}
	var unresolved []string
	v.mu.Lock()
	for _, k := range rest {
		if a, ok := stored[k]; ok && a.Resolved {
			out[k] = a.PriceID
			v.mapped[k] = a.PriceID
		} else {
			unresolved = append(unresolved, k)
		}
	}
	v.mu.Unlock()
	if len(unresolved) == 0 || !online {
		return out, nil
	}
	ids, err := v.mapper.Resolve(ctx, unresolved)
	if err != nil {
		return out, fmt.Errorf("price: resolving %d assets: %w", len(unresolved), err)
	}
	save := make([]store.PriceAsset, 0, len(ids))
	for k, id := range ids {
		save = append(save, store.PriceAsset{AssetKey: k, PriceID: id, Resolved: true})
	}
	if err := v.st.SavePriceAssets(ctx, save); err != nil {
		return out, err
	}
	v.mu.Lock()
	for k, id := range ids {
		out[k] = id
		v.mapped[k] = id
	}
	v.mu.Unlock()
	return out, nil
}

// ---- Jobs ----

// FillStats says what a Fill did.
type FillStats struct {
	Requests int // history calls to the source
	PriceIDs int // price ids fetched
	Points   int // points stored
	Marked   int // transactions marked modified in the changes feed
	// Failed names the price ids whose history could not be fetched; their needs stay and
	// the next Fill retries them.
	Failed []string
}

// Fill fetches the history that the recorded needs of past days (today's are left until the
// day is over; current prices value it meanwhile) are missing, in as few calls as the source
// allows: per price id, one history call over the whole span of its missing days (split only
// where the source's MaxRange demands), in USD; per kept currency, one call of the reference
// coin in that currency over the span, from which the exchange rate is derived. Each call's
// points are stored with the days it covered and the needs it met, in one database
// transaction. A failing call leaves that price id's needs in place: existing values are
// untouched, and the next Fill retries.
func (v *Valuer) Fill(ctx context.Context) (FillStats, error) {
	var stats FillStats
	today := store.Day(v.clock.Now())
	needs, err := v.st.PriceNeeds(ctx, today)
	if err != nil || len(needs) == 0 {
		return stats, err
	}
	var keys []string
	for _, n := range needs {
		keys = append(keys, n.AssetKey)
	}
	ids, err := v.resolve(ctx, keys, true)
	if err != nil {
		return stats, err
	}
	byID := map[string][]store.PriceNeed{}
	want := map[string]map[int64]bool{}
	var drop []store.PriceNeed
	for _, n := range needs {
		id := ids[n.AssetKey]
		if id == "" || id == "fiat:usd" {
			drop = append(drop, n) // nothing to fetch: no price id, or the reference itself
			continue
		}
		byID[id] = append(byID[id], n)
		if want[id] == nil {
			want[id] = map[int64]bool{}
		}
		want[id][n.Day] = true
		if strings.HasPrefix(id, "fiat:") {
			// An exchange rate is the reference coin's USD price over its price in the
			// currency: the former is needed on the same days.
			if want[v.ref] == nil {
				want[v.ref] = map[int64]bool{}
			}
			want[v.ref][n.Day] = true
		}
	}
	if err := v.st.DeletePriceNeeds(ctx, drop); err != nil {
		return stats, err
	}
	order := make([]string, 0, len(want))
	for id := range want {
		order = append(order, id)
	}
	// Coins first (the reference among them), then the exchange rates derived from it.
	sort.Slice(order, func(i, j int) bool {
		fi, fj := strings.HasPrefix(order[i], "fiat:"), strings.HasPrefix(order[j], "fiat:")
		if fi != fj {
			return fj
		}
		return order[i] < order[j]
	})
	var errs []error
	for _, id := range order {
		if strings.HasPrefix(id, "fiat:") && contains(stats.Failed, v.ref) {
			// Without the reference coin's USD prices the rates cannot be derived; marking
			// their days fetched would lose them.
			stats.Failed = append(stats.Failed, id)
			errs = append(errs, fmt.Errorf("%s: needs the history of %s", id, v.ref))
			continue
		}
		if err := v.fillOne(ctx, id, want[id], byID[id], &stats); err != nil {
			if ctx.Err() != nil {
				return stats, ctx.Err()
			}
			stats.Failed = append(stats.Failed, id)
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	if len(errs) > 0 {
		return stats, fmt.Errorf("price: history of %d of %d price ids not fetched (retried at the next fill): %w",
			len(errs), len(order), errors.Join(errs...))
	}
	return stats, nil
}

// daysPerCall is how many whole days one history call may span.
func (v *Valuer) daysPerCall() int64 {
	if r := v.src.MaxRange(); r > 0 {
		return max(1, int64(r/(24*time.Hour)))
	}
	return 1 << 40
}

// Chunks splits the span [first, last] of missing days into the calls Fill makes.
func (v *Valuer) chunks(first, last int64) [][2]int64 {
	per := v.daysPerCall()
	var out [][2]int64
	for d := first; d <= last; d += per {
		out = append(out, [2]int64{d, min(last, d+per-1)})
	}
	return out
}

func (v *Valuer) fillOne(ctx context.Context, id string, days map[int64]bool, needs []store.PriceNeed, stats *FillStats) error {
	first, last := int64(1<<62), int64(-1<<62)
	for d := range days {
		first, last = min(first, d), max(last, d)
	}
	covered, err := v.st.PriceDays(ctx, id, first, last)
	if err != nil {
		return err
	}
	var missing []int64
	for d := range days {
		if !covered[d] {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return v.st.DeletePriceNeeds(ctx, needs)
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	stats.PriceIDs++
	fiat, isFiat := strings.CutPrefix(id, "fiat:")
	for _, c := range v.chunks(missing[0], missing[len(missing)-1]) {
		from, to := store.DayStart(c[0]), store.DayStart(c[1]+1).Add(-time.Second)
		var points []store.PricePoint
		stats.Requests++
		if isFiat {
			quotes, err := v.src.History(ctx, v.ref, fiat, from, to)
			if err != nil {
				return err
			}
			usd, err := v.st.PricePoints(ctx, []string{v.ref}, from, to)
			if err != nil {
				return err
			}
			points = derive(id, usd[v.ref], quotes, v.tol)
		} else {
			got, err := v.src.History(ctx, id, "usd", from, to)
			if err != nil {
				return err
			}
			for _, p := range got {
				points = append(points, store.PricePoint{PriceID: id, At: p.At, Price: p.Price})
			}
		}
		var met []store.PriceNeed
		for _, n := range needs {
			if n.Day >= c[0] && n.Day <= c[1] {
				met = append(met, n)
			}
		}
		marked, err := v.st.SavePriceHistory(ctx, store.PriceHistory{PriceID: id, FromDay: c[0], ToDay: c[1], Points: points, Met: met})
		if err != nil {
			return err
		}
		stats.Points += len(points)
		stats.Marked += marked
	}
	// Needs of days covered before this fill, between or outside the chunks, are met too.
	return v.st.DeletePriceNeeds(ctx, needs)
}

// rateScale is the scale of derived exchange rates.
const rateScale = 18

// derive makes exchange-rate points: at each quote of the reference coin in the currency,
// the reference's USD price at the same time (or the nearest within tol) over the quote.
func derive(id string, usd []store.PricePoint, quotes []Point, tol time.Duration) []store.PricePoint {
	s := series(usd)
	out := make([]store.PricePoint, 0, len(quotes))
	for _, q := range quotes {
		p, ok := s.at(q.At, tol)
		if !ok || q.Price.Sign() <= 0 {
			continue
		}
		out = append(out, store.PricePoint{PriceID: id, At: q.At, Price: p.DivRound(q.Price, rateScale)})
	}
	return out
}

// RefreshCurrent resolves tracked assets not mapped yet, then reads the current price of
// every mapped price id, with the reference coin in every kept currency for the exchange
// rates, in as few calls as the source's ids-per-call allows (one for up to 200 ids). On
// failure nothing is replaced: the last known prices stay.
func (v *Valuer) RefreshCurrent(ctx context.Context) error {
	assets, err := v.st.PriceAssets(ctx, nil)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(assets))
	for k := range assets {
		keys = append(keys, k)
	}
	ids, err := v.resolve(ctx, keys, true)
	if err != nil {
		return err
	}
	want := []string{v.ref}
	for _, id := range ids {
		if id != "" && !strings.HasPrefix(id, "fiat:") {
			want = append(want, id)
		}
	}
	quotes, err := v.src.Current(ctx, want, v.currencies)
	if err != nil {
		return err
	}
	now := v.clock.Now()
	var points []store.PricePoint
	for id, q := range quotes {
		if p, ok := q["usd"]; ok {
			points = append(points, store.PricePoint{PriceID: id, At: now, Price: p})
		}
	}
	if refQ, ok := quotes[v.ref]; ok {
		for _, c := range v.currencies[1:] {
			if q, ok := refQ[c]; ok && q.Sign() > 0 {
				points = append(points, store.PricePoint{PriceID: FiatPriceID(c), At: now, Price: refQ["usd"].DivRound(q, rateScale)})
			}
		}
	}
	return v.st.SaveCurrentPrices(ctx, points)
}

// ---- Valuation at read time ----

// series is a price id's points, sorted by time.
type series []store.PricePoint

// at returns the price of the point nearest t, if within tol.
func (s series) at(t time.Time, tol time.Duration) (decimal.Decimal, bool) {
	i := sort.Search(len(s), func(i int) bool { return !s[i].At.Before(t) })
	best, bestD := -1, time.Duration(1<<62)
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(s) {
			continue
		}
		d := s[j].At.Sub(t)
		if d < 0 {
			d = -d
		}
		if d <= tol && d < bestD {
			best, bestD = j, d
		}
	}
	if best < 0 {
		return decimal.Decimal{}, false
	}
	return s[best].Price, true
}

// book is the prices loaded for one read.
type book struct {
	history  map[string]series
	current  map[string]store.PricePoint
	tol      time.Duration
	decimals int32
	currency string // upper case
	fxID     string
}

var one = decimal.NewFromInt(1)

// usd is the USD price of a price id at t: the nearest point of the history or the current
// price, within the tolerance.
func (b *book) usd(id string, t time.Time) (decimal.Decimal, bool) {
	if id == "fiat:usd" {
		return one, true
	}
	if id == "" {
		return decimal.Decimal{}, false
	}
	p, ok := b.history[id].at(t, b.tol)
	if c, has := b.current[id]; has {
		d := c.At.Sub(t)
		if d < 0 {
			d = -d
		}
		if d <= b.tol && (!ok || d < b.nearest(id, t)) {
			return c.Price, true
		}
	}
	return p, ok
}

// nearest is the distance from t to the nearest history point of id.
func (b *book) nearest(id string, t time.Time) time.Duration {
	s := b.history[id]
	i := sort.Search(len(s), func(i int) bool { return !s[i].At.Before(t) })
	best := time.Duration(1 << 62)
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(s) {
			d := s[j].At.Sub(t)
			if d < 0 {
				d = -d
			}
			best = min(best, d)
		}
	}
	return best
}

// value is amount × usd(id, t) / usd(currency, t), or nil when either price is unknown.
func (b *book) value(amount decimal.Decimal, id string, t time.Time) *Value {
	p, ok := b.usd(id, t)
	if !ok {
		return nil
	}
	fx, ok := b.usd(b.fxID, t)
	if !ok || fx.Sign() <= 0 {
		return nil
	}
	v := amount.Mul(p)
	if b.fxID == "fiat:usd" {
		v = v.Round(b.decimals)
	} else {
		v = v.DivRound(fx, b.decimals)
	}
	return &Value{Amount: v, Currency: b.currency}
}

// load reads the history of ids around [from, to] and their current prices.
func (v *Valuer) load(ctx context.Context, ids []string, from, to time.Time, currency string) (*book, error) {
	cur := strings.ToUpper(currency)
	if cur == "" {
		cur = "USD"
	}
	if !IsFiat(cur) {
		return nil, opencalico.Errorf(opencalico.EBadRequest, "Unsupported currency %q; use one of %s.", currency, strings.Join(v.Currencies(), ", "))
	}
	b := &book{history: map[string]series{}, tol: v.tol, decimals: v.decimals, currency: cur, fxID: FiatPriceID(cur)}
	ids = append(ids, b.fxID)
	hist, err := v.st.PricePoints(ctx, ids, from.Add(-v.tol), to.Add(v.tol))
	if err != nil {
		return nil, err
	}
	for id, ps := range hist {
		b.history[id] = ps
	}
	if b.current, err = v.st.CurrentPrices(ctx, ids); err != nil {
		return nil, err
	}
	return b, nil
}

// TxValues are the values of one transaction's legs and fees, in the order of its Inputs,
// Outputs and Fees. A nil entry is null: no price known (yet).
type TxValues struct {
	Inputs, Outputs, Fees []*Value
	// FeeTotal is the sum of the fees' values, null if any of them is; zero when there are
	// no fees.
	FeeTotal *Value
}

// quoteRank orders what may serve as a trade's quote: fiat, then stablecoins.
func quoteRank(id string) int {
	switch {
	case strings.HasPrefix(id, "fiat:"):
		return 2
	case stableIDs[id]:
		return 1
	}
	return 0
}

// ValueTransactions values the legs and fees of txns in currency (default USD) from the
// cache, without asking the source. Each is valued at its own time. A trade of one leg
// against one fiat or stablecoin leg uses the exchange's own fill price: the other leg is
// worth what the quote leg is worth at the market (a BTC/USDT fill of 0.5 BTC for 30000 USDT
// values the BTC leg at the value of 30000 USDT), and a fee in the traded asset at the same
// implied price; if the quote leg's value is unknown, the market price applies.
func (v *Valuer) ValueTransactions(ctx context.Context, txns []*opencalico.Transaction, currency string) ([]TxValues, error) {
	out := make([]TxValues, len(txns))
	if len(txns) == 0 {
		return out, nil
	}
	var keys []string
	from, to := txns[0].Timestamp, txns[0].Timestamp
	for _, t := range txns {
		keys = append(keys, keysOfTransaction(t)...)
		if t.Timestamp.Before(from) {
			from = t.Timestamp
		}
		if t.Timestamp.After(to) {
			to = t.Timestamp
		}
	}
	ids, err := v.resolve(ctx, keys, false)
	if err != nil {
		return nil, err
	}
	idList := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			idList = append(idList, id)
		}
	}
	b, err := v.load(ctx, idList, from, to, currency)
	if err != nil {
		return nil, err
	}
	for i, t := range txns {
		out[i] = v.valueTx(b, ids, t)
	}
	return out, nil
}

func (v *Valuer) valueTx(b *book, ids map[string]string, t *opencalico.Transaction) TxValues {
	var r TxValues
	r.Inputs = make([]*Value, len(t.Inputs))
	r.Outputs = make([]*Value, len(t.Outputs))
	r.Fees = make([]*Value, len(t.Fees))
	for i, l := range t.Inputs {
		r.Inputs[i] = b.value(l.Amount, ids[AssetKey(l.AssetSymbol, l.AssetID)], t.Timestamp)
	}
	for i, l := range t.Outputs {
		r.Outputs[i] = b.value(l.Amount, ids[AssetKey(l.AssetSymbol, l.AssetID)], t.Timestamp)
	}
	// The trade-price rule.
	var (
		baseKey   string
		baseValue *Value
		baseAmt   decimal.Decimal
	)
	if t.Categorization.Category == opencalico.CategoryTrade && len(t.Inputs) == 1 && len(t.Outputs) == 1 {
		in, out := t.Inputs[0], t.Outputs[0]
		inID, outID := ids[AssetKey(in.AssetSymbol, in.AssetID)], ids[AssetKey(out.AssetSymbol, out.AssetID)]
		ri, ro := quoteRank(inID), quoteRank(outID)
		switch {
		case ri > ro && r.Inputs[0] != nil && out.Amount.Sign() > 0:
			q := *r.Inputs[0]
			r.Outputs[0] = &q
			baseKey, baseValue, baseAmt = AssetKey(out.AssetSymbol, out.AssetID), &q, out.Amount
		case ro > ri && r.Outputs[0] != nil && in.Amount.Sign() > 0:
			q := *r.Outputs[0]
			r.Inputs[0] = &q
			baseKey, baseValue, baseAmt = AssetKey(in.AssetSymbol, in.AssetID), &q, in.Amount
		}
	}
	total := decimal.Zero
	totalKnown := true
	for i, f := range t.Fees {
		key := AssetKey(f.AssetSymbol, f.AssetID)
		if baseValue != nil && key == baseKey {
			r.Fees[i] = &Value{Amount: f.Amount.Mul(baseValue.Amount).DivRound(baseAmt, b.decimals), Currency: b.currency}
		} else {
			r.Fees[i] = b.value(f.Amount, ids[key], t.Timestamp)
		}
		if r.Fees[i] == nil {
			totalKnown = false
		} else {
			total = total.Add(r.Fees[i].Amount)
		}
	}
	if totalKnown {
		r.FeeTotal = &Value{Amount: total, Currency: b.currency}
	}
	return r
}

// PositionValue is a position's unit price and value; nil is null.
type PositionValue struct {
	Price, Value *Value
}

// ValuePositions values positions at the current prices, in currency (default USD). The
// current price is used however old it is (a source outage leaves the last one in place);
// without one, a history point near now serves.
func (v *Valuer) ValuePositions(ctx context.Context, ps []opencalico.Position, currency string) ([]PositionValue, error) {
	out := make([]PositionValue, len(ps))
	if len(ps) == 0 {
		return out, nil
	}
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = AssetKey(p.AssetSymbol, p.AssetID)
	}
	ids, err := v.resolve(ctx, keys, false)
	if err != nil {
		return nil, err
	}
	var idList []string
	for _, id := range ids {
		if id != "" {
			idList = append(idList, id)
		}
	}
	now := v.clock.Now()
	b, err := v.load(ctx, idList, now, now, currency)
	if err != nil {
		return nil, err
	}
	price := func(id string) (decimal.Decimal, bool) {
		if c, ok := b.current[id]; ok {
			return c.Price, true
		}
		return b.usd(id, now)
	}
	fx, fxOK := price(b.fxID)
	if b.fxID == "fiat:usd" {
		fx, fxOK = one, true
	}
	for i := range ps {
		id := ids[keys[i]]
		p, ok := price(id)
		if id == "fiat:usd" {
			p, ok = one, true
		}
		if !ok || !fxOK || fx.Sign() <= 0 || id == "" {
			continue
		}
		unit, val := p, ps[i].Quantity.Mul(p)
		if b.fxID != "fiat:usd" {
			unit, val = p.DivRound(fx, rateScale), val.DivRound(fx, v.decimals)
		} else {
			val = val.Round(v.decimals)
		}
		out[i] = PositionValue{Price: &Value{Amount: unit, Currency: b.currency}, Value: &Value{Amount: val, Currency: b.currency}}
	}
	return out, nil
}
