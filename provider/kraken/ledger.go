package kraken

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// How the ledger is read
//
// Kraken's Ledgers answers the rows with time after `start` (exclusive) and up to `end`
// (inclusive), newest first, 50 from offset `ofs`, with `count`, the number of all rows in
// that window. New rows arrive at the newest end, so an offset counted from the newest row
// shifts while a read is in progress — but an offset counted from the oldest row of the
// window does not. The reader therefore addresses rows from the oldest end:
//
//  1. A first call (ofs 0) learns the count and the newest row's time, which is pinned as
//     `end` for the rest of the read: rows booked from then on are outside the window and
//     wait for the next read, so the window can only grow by a row booked late with an old
//     time.
//  2. It holds the oldest rows of the window in a buffer, and asks for the next 50 older
//     ones than it misses with ofs = count − buffered − 50. Every answer repeats the count;
//     if it differs from the one the offset was computed with, rows were inserted into the
//     window, the answer may be misaligned, and it is ignored and asked again with the new
//     count. When the count matches, the window holds exactly the rows it held before (rows
//     are never removed), so the page is exactly the next older rows: none skipped, none
//     twice. Rows are also kept by ledger id, so an overlap can never double one.
//  3. Rows are handed over oldest first, in complete refid groups only: a cut is made
//     between two rows with different times, with no refid on both sides, and (except at
//     the end of the window) at least GroupSpan older than the newest buffered row, since
//     the rest of a group may still be in the unread newer part. After each cut, `start`
//     moves to the time of the last row handed over; the rows up to it leave the window,
//     and the count drops by exactly their number.
//  4. The cursor saved with each page is that time and the ids of the rows handed over
//     in the last Overlap before it. The next read starts Overlap earlier, and skips a
//     group whose rows were all handed over already, so a row booked late with a slightly
//     older time is still found, and nothing is handed over twice. A group that gains a
//     row inside the overlap is handed over again whole (same refid, so the store updates
//     it rather than adding a second one).

// ledgerPageSize is how many rows Ledgers answers per call.
const ledgerPageSize = 50

// maxRealignments bounds how many times in a row the reader re-asks because the count
// moved: a window that keeps changing under it is a provider problem, not progress.
const maxRealignments = 20

// ledgerCursor is the stream's cursor, stored as JSON.
type ledgerCursor struct {
	V int `json:"v"`
	// Time is the time of the newest row handed over: every row up to it has been read.
	Time string `json:"t,omitempty"`
	// Seen maps a time to the ids of the rows of that time handed over, for the times in
	// the last Overlap up to Time.
	Seen map[string][]string `json:"seen,omitempty"`
}

func parseCursor(s string) (ledgerCursor, error) {
	var c ledgerCursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.V != 1 {
		return c, opencalico.Errorf(opencalico.EInvalidCursor, "The saved Kraken ledger cursor is unreadable; the history must be read again from the start.")
	}
	if c.Time != "" {
		if _, err := decimal.NewFromString(c.Time); err != nil {
			return c, opencalico.Errorf(opencalico.EInvalidCursor, "The saved Kraken ledger cursor has a bad time.")
		}
	}
	return c, nil
}

// ledgersResult is the result of Ledgers.
type ledgersResult struct {
	Ledger map[string]LedgerEntry `json:"ledger"`
	Count  int                    `json:"count"`
}

// ledgerReader is the state of one read of the ledger.
type ledgerReader struct {
	ad   *Adapter
	cred credentials
	conn string
	sink provider.Sink

	start    *decimal.Decimal // nil: from the beginning
	end      string           // pinned after the first call
	count    int              // rows in (start, end]; -1 before the first call
	buffer   map[string]LedgerEntry
	seen     map[string]decimal.Decimal // id → time of rows handed over near the cursor
	lastTime string                     // cursor time
}

// History reads the ledger from the cursor and hands it over in complete groups.
func (ad *Adapter) History(ctx context.Context, a provider.Account, from provider.Cursors, sink provider.Sink) error {
	cred, err := credentialsOf(a)
	if err != nil {
		return err
	}
	cur, err := parseCursor(from[LedgerStream])
	if err != nil {
		return err
	}
	r := &ledgerReader{ad: ad, cred: cred, conn: a.ConnectionID, sink: sink, count: -1,
		buffer: map[string]LedgerEntry{}, seen: map[string]decimal.Decimal{}, lastTime: cur.Time}
	if cur.Time != "" {
		s := decimal.RequireFromString(cur.Time).Sub(ad.overlap)
		r.start = &s
		for t, ids := range cur.Seen {
			d, err := decimal.NewFromString(t)
			if err != nil {
				return opencalico.Errorf(opencalico.EInvalidCursor, "The saved Kraken ledger cursor has a bad time.")
			}
			for _, id := range ids {
				r.seen[id] = d
			}
		}
	}
	err = r.run(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errSink), ctx.Err() != nil, provider.IsAuthError(err):
		return unwrapSink(err)
	}
	return &provider.IncompleteError{Streams: []string{LedgerStream}, Err: err}
}

// errSink marks an error that came from the sink, returned as it is.
var errSink = errors.New("sink")

type sinkError struct{ err error }

func (e sinkError) Error() string        { return e.err.Error() }
func (e sinkError) Is(target error) bool { return target == errSink }
func (e sinkError) Unwrap() error        { return e.err }

func unwrapSink(err error) error {
	var s sinkError
	if errors.As(err, &s) {
		return s.err
	}
	return err
}

func (r *ledgerReader) fetch(ctx context.Context, ofs int) (ledgersResult, error) {
	params := url.Values{}
	if r.start != nil {
		params.Set("start", r.start.String())
	}
	if r.end != "" {
		params.Set("end", r.end)
	}
	if ofs > 0 {
		params.Set("ofs", strconv.Itoa(ofs))
	}
	var res ledgersResult
	if err := r.ad.call(ctx, r.cred, "Ledgers", params, &res); err != nil {
		return res, err
	}
	for id, e := range res.Ledger {
		e.ID = id
		if _, err := decimal.NewFromString(e.Time.String()); err != nil {
			return res, &opencalico.Error{Code: opencalico.EProviderError, ProviderID: ProviderID,
				Message: "Kraken's Ledgers answer has a row without a valid time."}
		}
		res.Ledger[id] = e
	}
	return res, nil
}

func (r *ledgerReader) run(ctx context.Context) error {
	realignments := 0
	for {
		if r.count < 0 {
			res, err := r.fetch(ctx, 0)
			if err != nil {
				return err
			}
			r.count = res.Count
			if res.Count == 0 || len(res.Ledger) == 0 {
				return nil
			}
			newest := ""
			var newestT decimal.Decimal
			for _, e := range res.Ledger {
				if t := e.when(); newest == "" || t.GreaterThan(newestT) {
					newest, newestT = e.Time.String(), t
				}
			}
			r.end = newest
			if res.Count <= len(res.Ledger) {
				// The whole window came in one answer.
				for id, e := range res.Ledger {
					r.buffer[id] = e
				}
			}
		}
		if need := r.count - len(r.buffer); need > 0 {
			ofs := max(0, need-ledgerPageSize)
			res, err := r.fetch(ctx, ofs)
			if err != nil {
				return err
			}
			added := 0
			if res.Count == r.count {
				for id, e := range res.Ledger {
					if _, dup := r.buffer[id]; !dup {
						r.buffer[id] = e
						added++
					}
				}
			}
			if res.Count != r.count || added != min(need, ledgerPageSize) {
				// Rows were booked into the window since the offset was computed: ask again.
				// Rows buffered so far are the oldest of the window and stay valid.
				realignments++
				if realignments > maxRealignments {
					return provider.Transient(fmt.Errorf("kraken: the ledger kept changing during the read"), 0)
				}
				r.count = res.Count
				continue
			}
			realignments = 0
		}
		final := len(r.buffer) >= r.count
		if err := r.handOver(ctx, final); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

// sortedBuffer returns the buffered rows oldest first (ties by id, for a stable order).
func (r *ledgerReader) sortedBuffer() []LedgerEntry {
	rows := make([]LedgerEntry, 0, len(r.buffer))
	for _, e := range r.buffer {
		rows = append(rows, e)
	}
	slices.SortFunc(rows, func(a, b LedgerEntry) int {
		return cmp.Or(a.when().Cmp(b.when()), cmp.Compare(a.ID, b.ID))
	})
	return rows
}

// groupKey is the refid, or the row's own id when it has none.
func groupKey(e LedgerEntry) string {
	if e.RefID != "" {
		return e.RefID
	}
	return e.ID
}

// cutIndex returns how many of the oldest rows can be handed over: the largest p such that
// rows[:p] and rows[p:] share no time and no refid group, and, unless final, every row of
// rows[:p] is more than span older than the newest buffered row.
func cutIndex(rows []LedgerEntry, final bool, span decimal.Decimal) int {
	n := len(rows)
	if n == 0 {
		return 0
	}
	if final {
		return n
	}
	lastOf := map[string]int{}
	for i, e := range rows {
		lastOf[groupKey(e)] = i
	}
	limit := rows[n-1].when().Sub(span)
	best, reach := 0, -1
	for p := 1; p < n; p++ {
		prev := rows[p-1]
		if !prev.when().LessThan(limit) {
			break
		}
		reach = max(reach, lastOf[groupKey(prev)])
		if reach < p && prev.when().LessThan(rows[p].when()) {
			best = p
		}
	}
	return best
}

// handOver cuts the buffer and hands the complete groups before the cut to the sink as one
// page whose cursor is the position after them.
func (r *ledgerReader) handOver(ctx context.Context, final bool) error {
	rows := r.sortedBuffer()
	p := cutIndex(rows, final, r.ad.groupSpan)
	if p == 0 {
		return nil
	}
	done := rows[:p]
	// Groups in order of their first row; a group whose every row was handed over before
	// (the overlap re-read) is skipped.
	var order []string
	groups := map[string][]LedgerEntry{}
	for _, e := range done {
		k := groupKey(e)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var txs []*opencalico.Transaction
	for _, k := range order {
		fresh := false
		for _, e := range groups[k] {
			if _, ok := r.seen[e.ID]; !ok {
				fresh = true
			}
		}
		if fresh {
			txs = append(txs, NormalizeGroup(r.conn, groups[k]))
		}
	}
	last := done[p-1]
	lastT := last.when()
	for _, e := range done {
		r.seen[e.ID] = e.when()
		delete(r.buffer, e.ID)
	}
	r.count -= p
	r.start = &lastT
	r.lastTime = last.Time.String()
	// Keep the ids of the last Overlap only: older rows are before the next read's start.
	floor := lastT.Sub(r.ad.overlap)
	for id, t := range r.seen {
		if t.LessThan(floor) {
			delete(r.seen, id)
		}
	}
	if err := r.sink(ctx, provider.Page{Stream: LedgerStream, Cursor: r.cursor(), Transactions: txs}); err != nil {
		return sinkError{err}
	}
	return nil
}

func (r *ledgerReader) cursor() string {
	c := ledgerCursor{V: 1, Time: r.lastTime, Seen: map[string][]string{}}
	for id, t := range r.seen {
		k := t.String()
		c.Seen[k] = append(c.Seen[k], id)
	}
	for _, ids := range c.Seen {
		slices.Sort(ids)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	_ = enc.Encode(c) // maps of strings always encode
	return string(bytes.TrimSpace(b.Bytes()))
}
