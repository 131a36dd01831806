// Package transfer links the two sides of a movement between a user's own connections — an
// exchange withdrawal and the wallet's receive, a send from one wallet and its receive in
// another — so that a partner sees one transfer rather than a sale and a purchase.
//
// Two sides match when they are a send and a receive of the same asset in two different
// connections and either
//   - carry the same on-chain hash (in any of the spellings providers use), or
//   - one of them has no hash (exchanges do not always report one), the received amount is
//     the sent amount (or the sent amount less the sender's fee in that asset), and the
//     receive comes no earlier than EarlySkew before the send and no later than Window after.
//
// Two sides that both carry hashes, different ones, are different movements and never match
// by amount. Among candidates the closest in time wins, so that a repeated amount links
// its nearest occurrence. Linked sides get one transfer_id and the category transfer.
package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/store"
)

// Window is how long after a send its receive may arrive to match by amount alone: an
// exchange records a withdrawal when it is requested, the chain confirms it later.
const Window = 12 * time.Hour

// EarlySkew is how long before a send its receive may be stamped: providers stamp events at
// different moments (request, broadcast, block time).
const EarlySkew = time.Hour

// Pair is two matched sides.
type Pair struct{ Send, Receive store.TransferSide }

// ID is the pair's transfer_id: the same two transactions always give the same id.
func (p Pair) ID() string {
	a, b := p.Send.ID, p.Receive.ID
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\x00" + b))
	return "trf_" + hex.EncodeToString(sum[:12])
}

// Match pairs each of mine with at most one of others. mine are one connection's sides,
// others the user's other connections'; a side is used once.
func Match(mine, others []store.TransferSide) []Pair {
	type candidate struct {
		m, o   int
		byHash bool
		// amount: the amounts agree (for a hash match, where they need not: a batch
		// withdrawal pays several of the user's wallets in one transaction).
		amount bool
		gap    time.Duration
	}
	byHash := map[string][]int{}
	for i, o := range others {
		if o.TxHash != "" {
			byHash[store.HashKey(o.TxHash)] = append(byHash[store.HashKey(o.TxHash)], i)
		}
	}
	var cands []candidate
	for mi, m := range mine {
		if m.TxHash != "" {
			for _, oi := range byHash[store.HashKey(m.TxHash)] {
				if o := others[oi]; opposite(m, o) {
					send, recv := sides(m, o)
					cands = append(cands, candidate{m: mi, o: oi, byHash: true, amount: amountMatches(send, recv),
						gap: absDuration(m.Timestamp.Sub(o.Timestamp))})
				}
			}
		}
		for oi, o := range others {
			if (m.TxHash != "" && o.TxHash != "") || !opposite(m, o) {
				continue
			}
			send, recv := sides(m, o)
			if !amountMatches(send, recv) || !inWindow(send, recv) {
				continue
			}
			cands = append(cands, candidate{m: mi, o: oi, amount: true, gap: absDuration(recv.Timestamp.Sub(send.Timestamp))})
		}
	}
	// Hash matches first, then agreeing amounts, then the closest in time; ids break ties so
	// that the result never depends on the order rows came in.
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.byHash != b.byHash {
			return a.byHash
		}
		if a.amount != b.amount {
			return a.amount
		}
		if a.gap != b.gap {
			return a.gap < b.gap
		}
		if mine[a.m].ID != mine[b.m].ID {
			return mine[a.m].ID < mine[b.m].ID
		}
		return others[a.o].ID < others[b.o].ID
	})
	usedMine, usedOther := map[int]bool{}, map[int]bool{}
	var out []Pair
	for _, c := range cands {
		if usedMine[c.m] || usedOther[c.o] {
			continue
		}
		usedMine[c.m], usedOther[c.o] = true, true
		p := Pair{Send: mine[c.m], Receive: others[c.o]}
		if p.Send.Type != opencalico.TypeSend {
			p.Send, p.Receive = p.Receive, p.Send
		}
		out = append(out, p)
	}
	return out
}

// sides orders two opposite sides as the send and the receive.
func sides(a, b store.TransferSide) (send, recv store.TransferSide) {
	if a.Type == opencalico.TypeSend {
		return a, b
	}
	return b, a
}

// opposite reports whether a and b are a send and a receive of one asset in two connections.
func opposite(a, b store.TransferSide) bool {
	return a.ConnectionID != b.ConnectionID && a.Type != b.Type &&
		strings.EqualFold(a.AssetSymbol, b.AssetSymbol)
}

func amountMatches(send, recv store.TransferSide) bool {
	return recv.Amount.Equal(send.Amount) || (send.Fee.IsPositive() && recv.Amount.Equal(send.Amount.Sub(send.Fee)))
}

func inWindow(send, recv store.TransferSide) bool {
	return !recv.Timestamp.Before(send.Timestamp.Add(-EarlySkew)) && !recv.Timestamp.After(send.Timestamp.Add(Window))
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Linker links the transfers of a connection after its history was read.
type Linker struct {
	Store *store.Store
	Log   *slog.Logger
}

// Link undoes the connection's links that a correction broke, then matches the connection's
// unlinked sends and receives against the user's other connections' and links the pairs. It returns how many pairs it linked. It reads only
// candidates that can match: those sharing a hash, and those without a hash within the
// window of the connection's sides.
func (l *Linker) Link(ctx context.Context, userID, connectionID string) (int, error) {
	// A provider may have corrected a linked side since (a withdrawal that failed after
	// all): such links go first, and the sides are matched again.
	if n, err := l.Store.UnlinkBrokenTransfers(ctx, userID, connectionID); err != nil {
		return 0, err
	} else if n > 0 && l.Log != nil {
		l.Log.InfoContext(ctx, "transfers unlinked after a correction", "connection_id", connectionID, "transactions", n)
	}
	// Only this connection's sides changed since the last pass: a side left unmatched then
	// had no counterpart, and a counterpart arriving since, in another connection, was
	// matched by that connection's pass, which looks at every connection but its own.
	mark, since, err := l.Store.TransferLinkMark(ctx, userID, connectionID)
	if err != nil {
		return 0, err
	}
	mine, err := l.Store.UnlinkedTransferSides(ctx, userID, connectionID, since)
	if err != nil {
		return 0, err
	}
	if len(mine) == 0 {
		return 0, l.Store.SetTransferLinkMark(ctx, connectionID, mark)
	}
	var hashes []string
	var hashedFrom, hashedTo, bareFrom, bareTo time.Time
	for _, m := range mine {
		if m.TxHash != "" {
			hashes = append(hashes, m.TxHash)
			hashedFrom, hashedTo = widen(hashedFrom, hashedTo, m.Timestamp)
		} else {
			bareFrom, bareTo = widen(bareFrom, bareTo, m.Timestamp)
		}
	}
	others, err := l.Store.UnlinkedTransferSidesByHash(ctx, userID, connectionID, hashes)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, o := range others {
		seen[o.ID] = true
	}
	add := func(from, to time.Time, hashless bool) error {
		if from.IsZero() {
			return nil
		}
		got, err := l.Store.UnlinkedTransferSidesBetween(ctx, userID, connectionID, from.Add(-Window), to.Add(Window), hashless)
		if err != nil {
			return err
		}
		for _, o := range got {
			if !seen[o.ID] {
				seen[o.ID] = true
				others = append(others, o)
			}
		}
		return nil
	}
	// Sides with a hash can match by amount only sides without one; sides without a hash
	// can match any.
	if err := add(hashedFrom, hashedTo, true); err != nil {
		return 0, err
	}
	if err := add(bareFrom, bareTo, false); err != nil {
		return 0, err
	}
	linked := 0
	for _, p := range Match(mine, others) {
		ok, err := l.Store.LinkTransfer(ctx, userID, p.Send.ID, p.Receive.ID, p.ID())
		if err != nil {
			return linked, err
		}
		if ok {
			linked++
		}
	}
	if linked > 0 && l.Log != nil {
		l.Log.InfoContext(ctx, "transfers linked", "connection_id", connectionID, "pairs", linked)
	}
	return linked, l.Store.SetTransferLinkMark(ctx, connectionID, mark)
}

func widen(from, to, t time.Time) (time.Time, time.Time) {
	if from.IsZero() || t.Before(from) {
		from = t
	}
	if to.IsZero() || t.After(to) {
		to = t
	}
	return from, to
}
