package binance

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// The streams of a Binance history, as named in provider.Cursors and IncompleteError.
const (
	streamDeposits    = "deposits"
	streamWithdrawals = "withdrawals"
	// streamAssets carries no transactions: its cursor remembers every asset the account was
	// ever seen with, so that symbol discovery on a later run still knows assets that were
	// deposited years ago and are no longer held.
	streamAssets = "assets"
	// streamTrades prefixes one stream per symbol ("myTrades:BTCUSDT"); alone it names the
	// discovery of symbols when that failed.
	streamTrades = "myTrades"
)

const (
	// capitalWindow is the span of one deposit or withdrawal history request: Binance
	// refuses 90 days or more.
	capitalWindow = 89 * 24 * time.Hour
	// capitalLookback is re-read on every run before the end of the last window, in
	// addition to the open window itself, to catch late records and status changes.
	capitalLookback = 24 * time.Hour
	capitalPageSize = 1000
	tradesPageSize  = 1000
)

// stopError marks an error that ends the whole read (the sink refused a page), as opposed
// to one that only leaves its stream incomplete.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// tradesCursor is the cursor of a symbol's trade stream: the next trade id to read, and the
// symbol's assets, kept so that a symbol later delisted (and so gone from exchangeInfo) is
// still read and normalized.
type tradesCursor struct {
	FromID int64  `json:"fromId"`
	Base   string `json:"base"`
	Quote  string `json:"quote"`
}

// historyRun is one History call.
type historyRun struct {
	a      *Adapter
	keys   keys
	acc    provider.Account
	from   provider.Cursors
	sink   provider.Sink
	known  map[string]bool  // assets the account holds or ever moved
	failed map[string]error // stream → why it is incomplete
	// assetsCursor is the last assets list handed to the sink (or read from the cursors).
	assetsCursor string
}

// History reads deposits, withdrawals and trades not yet read, resuming from the cursors.
//
// Symbol discovery. myTrades answers only for one symbol at a time and Binance has no call
// that lists the symbols a user traded, so the adapter guesses them: it takes the markets
// of exchangeInfo whose base and quote assets are both among the assets the account is known
// to have had, which are (1) the assets it holds now, (2) every coin it ever deposited or
// withdrew, (3) the assets remembered from earlier runs (the "assets" stream), and (4) the
// base, quote and commission assets of every trade found, repeating until no new market
// qualifies. Symbols read before are always read again from their cursors.
//
// Limits: a market is missed when one of its assets was never held at the time of a sync,
// never deposited or withdrawn, and never appears in another found trade. For example, USDT
// bought and sold entirely for BTC within one market is found, but a coin bought with USDT,
// sold entirely for BTC, never held during a sync and never moved on chain leaves both its
// markets unseen. Markets delisted before the first sync are absent from exchangeInfo and are
// not read. Conversions (convert history), fiat orders, Simple Earn rewards, dividends,
// margin and futures are not read either; reconciliation then shows the gap.
func (a *Adapter) History(ctx context.Context, acc provider.Account, from provider.Cursors, sink provider.Sink) error {
	k, err := credentials(acc)
	if err != nil {
		return err
	}
	h := &historyRun{a: a, keys: k, acc: acc, from: from, sink: sink,
		known: map[string]bool{}, failed: map[string]error{}, assetsCursor: from[streamAssets]}
	for _, asset := range strings.Split(from[streamAssets], ",") {
		if asset != "" {
			h.known[asset] = true
		}
	}
	return h.run(ctx)
}

func (h *historyRun) run(ctx context.Context) error {
	// fail records a stream's failure, or returns the error if it must end the read.
	fail := func(stream string, err error) error {
		var stop *stopError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &stop):
			return stop.err
		case provider.IsAuthError(err):
			return err
		}
		h.failed[stream] = err
		return nil
	}

	markets, err := h.a.exchangeInfo(ctx)
	if err := fail(streamTrades, err); err != nil {
		return err
	}
	info, err := h.a.account(ctx, h.keys)
	if err := fail(streamTrades, err); err != nil {
		return err
	}
	if info != nil {
		for _, b := range info.Balances {
			h.known[b.Asset] = true
		}
	}
	err = readCapital(ctx, h, streamDeposits, "/sapi/v1/capital/deposit/hisrec",
		func(d wireDeposit) string { return d.Coin }, normalizeDeposit)
	if err := fail(streamDeposits, err); err != nil {
		return err
	}
	err = readCapital(ctx, h, streamWithdrawals, "/sapi/v1/capital/withdraw/history",
		func(w wireWithdrawal) string { return w.Coin }, normalizeWithdrawal)
	if err := fail(streamWithdrawals, err); err != nil {
		return err
	}

	for _, s := range []string{streamDeposits, streamWithdrawals} {
		if h.failed[s] != nil && h.failed[streamTrades] == nil {
			// Discovery guesses symbols from the coins moved: it is as incomplete as they are.
			h.failed[streamTrades] = fmt.Errorf("symbol discovery ran without the complete %s history", s)
		}
	}

	// Symbols read before, with the assets their cursors remember.
	symbols := map[string]market{}
	for stream, c := range h.from {
		sym, ok := strings.CutPrefix(stream, streamTrades+":")
		if !ok {
			continue
		}
		var tc tradesCursor
		if json.Unmarshal([]byte(c), &tc) == nil && tc.Base != "" && tc.Quote != "" {
			symbols[sym] = market{Base: tc.Base, Quote: tc.Quote}
		} else if m, ok := markets[sym]; ok {
			symbols[sym] = m
		}
	}
	done := map[string]bool{}
	for {
		// Every market whose two assets are known, and that was not read in this run yet.
		for sym, m := range markets {
			if h.known[m.Base] && h.known[m.Quote] {
				symbols[sym] = m
			}
		}
		var todo []string
		for sym := range symbols {
			if !done[sym] {
				todo = append(todo, sym)
			}
		}
		if len(todo) == 0 {
			break
		}
		if err := h.saveAssets(ctx); err != nil {
			return err
		}
		slices.Sort(todo)
		for _, sym := range todo {
			done[sym] = true
			stream := streamTrades + ":" + sym
			if err := fail(stream, h.readTrades(ctx, sym, symbols[sym])); err != nil {
				return err
			}
		}
	}
	if err := h.saveAssets(ctx); err != nil {
		return err
	}

	if len(h.failed) == 0 {
		return nil
	}
	streams := slices.Sorted(maps.Keys(h.failed))
	errs := make([]error, 0, len(streams))
	for _, s := range streams {
		errs = append(errs, h.failed[s])
	}
	return &provider.IncompleteError{Streams: streams, Err: errors.Join(errs...)}
}

// emit hands a page to the sink; a sink error stops the read.
func (h *historyRun) emit(ctx context.Context, p provider.Page) error {
	for _, tx := range p.Transactions {
		tx.UserID = h.acc.UserID
	}
	if err := h.sink(ctx, p); err != nil {
		return &stopError{err}
	}
	return nil
}

// saveAssets emits the known assets when they changed since the last time.
func (h *historyRun) saveAssets(ctx context.Context) error {
	list := strings.Join(slices.Sorted(maps.Keys(h.known)), ",")
	if list == h.assetsCursor {
		return nil
	}
	if err := h.emit(ctx, provider.Page{Stream: streamAssets, Cursor: list}); err != nil {
		return err.(*stopError).err
	}
	h.assetsCursor = list
	return nil
}

// readTrades reads a symbol's trades from its cursor on, a page of up to 1000 at a time.
func (h *historyRun) readTrades(ctx context.Context, symbol string, m market) error {
	stream := streamTrades + ":" + symbol
	var cur tradesCursor
	if c, ok := h.from[stream]; ok {
		// A cursor we cannot read restarts the symbol from its first trade: the store's
		// upsert by ExternalID makes re-reading harmless.
		_ = json.Unmarshal([]byte(c), &cur)
	}
	for {
		var rows []wireTrade
		params := []param{{"symbol", symbol}, {"fromId", strconv.FormatInt(cur.FromID, 10)}, {"limit", strconv.Itoa(tradesPageSize)}}
		if err := h.a.signed(ctx, h.keys, "/api/v3/myTrades", params, 20, &rows); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		txs := make([]*opencalico.Transaction, 0, len(rows))
		for _, r := range rows {
			tx, err := normalizeTrade(h.acc.ConnectionID, r, m)
			if err != nil {
				return err
			}
			txs = append(txs, tx)
			h.known[m.Base], h.known[m.Quote] = true, true
			if r.CommissionAsset != "" {
				h.known[r.CommissionAsset] = true
			}
			cur.FromID = max(cur.FromID, r.ID+1)
		}
		cur.Base, cur.Quote = m.Base, m.Quote
		c, _ := json.Marshal(cur)
		if err := h.emit(ctx, provider.Page{Stream: stream, Cursor: string(c), Transactions: txs}); err != nil {
			return err
		}
		if len(rows) < tradesPageSize {
			return nil
		}
	}
}

// readCapital reads a deposit or withdrawal history in windows of capitalWindow from its
// cursor to now, each window in pages of offset/limit. The cursor (milliseconds) is where
// the next run starts: the end of the last closed window, but never later than the earliest
// event still pending (so that it is read again until it settles), and, for the window that
// ends now, its start or capitalLookback before now, whichever is earlier.
func readCapital[T any](ctx context.Context, h *historyRun, stream, path string,
	coin func(T) string, normalize func(string, T) (*opencalico.Transaction, error)) error {
	start := h.a.historyStart.UnixMilli()
	if c, ok := h.from[stream]; ok {
		if v, err := strconv.ParseInt(c, 10, 64); err == nil {
			start = v
		}
	}
	if err := h.a.syncTime(ctx, false); err != nil {
		return err
	}
	now := h.a.serverNow().UnixMilli()
	hold := int64(1<<63 - 1) // the earliest pending event seen
	for ws := start; ws <= now; {
		we := min(ws+capitalWindow.Milliseconds()-1, now)
		var txs []*opencalico.Transaction
		for offset := 0; ; offset += capitalPageSize {
			var rows []T
			params := []param{
				{"startTime", strconv.FormatInt(ws, 10)}, {"endTime", strconv.FormatInt(we, 10)},
				{"offset", strconv.Itoa(offset)}, {"limit", strconv.Itoa(capitalPageSize)},
			}
			if err := h.a.signed(ctx, h.keys, path, params, 1, &rows); err != nil {
				return err
			}
			for _, r := range rows {
				tx, err := normalize(h.acc.ConnectionID, r)
				if err != nil {
					return err
				}
				txs = append(txs, tx)
				h.known[coin(r)] = true
				if tx.Status == opencalico.TxPending {
					hold = min(hold, tx.Timestamp.UnixMilli())
				}
			}
			if len(rows) < capitalPageSize {
				break
			}
		}
		// Binance answers newest first; pages go out oldest first.
		slices.SortFunc(txs, func(x, y *opencalico.Transaction) int {
			return cmp.Or(x.Timestamp.Compare(y.Timestamp), strings.Compare(x.ExternalID, y.ExternalID))
		})
		next := we + 1
		last := we == now
		if last {
			next = min(ws, now-capitalLookback.Milliseconds())
		}
		if len(txs) > 0 || last {
			cursor := strconv.FormatInt(min(next, hold), 10)
			if err := h.emit(ctx, provider.Page{Stream: stream, Cursor: cursor, Transactions: txs}); err != nil {
				return err
			}
		}
		ws = we + 1
	}
	return nil
}

// exchangeInfo returns every listed market by symbol (weight 20).
func (a *Adapter) exchangeInfo(ctx context.Context) (map[string]market, error) {
	var body struct {
		Symbols []struct {
			Symbol     string `json:"symbol"`
			BaseAsset  string `json:"baseAsset"`
			QuoteAsset string `json:"quoteAsset"`
		} `json:"symbols"`
	}
	if err := a.public(ctx, "/api/v3/exchangeInfo", 20, &body); err != nil {
		return nil, err
	}
	out := make(map[string]market, len(body.Symbols))
	for _, s := range body.Symbols {
		out[s.Symbol] = market{Base: s.BaseAsset, Quote: s.QuoteAsset}
	}
	return out, nil
}
