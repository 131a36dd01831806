// Package adaptertest holds what the wallet adapters' tests against their simulators share:
// a collector of history pages that can stop after k of them (to resume from the cursors it
// kept), and the net of a set of transactions per asset (to reconcile with balances).
package adaptertest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
	"github.com/shopspring/decimal"
)

// ErrStop is what a Sink returns once it has taken the pages it was told to.
var ErrStop = errors.New("adaptertest: stop")

// Read collects the pages of History reads: the transactions by external id (a second
// sighting replaces the first), the cursors of the pages taken, and counts.
type Read struct {
	mu      sync.Mutex
	Txs     map[string]*opencalico.Transaction
	Cursors provider.Cursors
	Pages   int // pages taken
	Rows    int // transactions handed over, a second sighting counted again
}

// NewRead returns an empty collector.
func NewRead() *Read {
	return &Read{Txs: map[string]*opencalico.Transaction{}, Cursors: provider.Cursors{}}
}

// Sink takes pages, each transaction checked with Validate, until stopAfter pages were taken
// (negative: all), then answers ErrStop.
func (r *Read) Sink(t testing.TB, stopAfter int) provider.Sink {
	return func(ctx context.Context, p provider.Page) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if stopAfter >= 0 && r.Pages >= stopAfter {
			return ErrStop
		}
		r.Pages++
		for _, tx := range p.Transactions {
			if err := tx.Validate(); err != nil {
				t.Errorf("invalid transaction: %v", err)
			}
			r.Txs[tx.ExternalID] = tx
			r.Rows++
		}
		r.Cursors[p.Stream] = p.Cursor
		return nil
	}
}

// NetByAsset sums outputs − inputs − fees per asset id.
func NetByAsset(txs map[string]*opencalico.Transaction) map[string]decimal.Decimal {
	net := map[string]decimal.Decimal{}
	for _, tx := range txs {
		for _, l := range tx.Outputs {
			net[l.AssetID] = net[l.AssetID].Add(l.Amount)
		}
		for _, l := range tx.Inputs {
			net[l.AssetID] = net[l.AssetID].Sub(l.Amount)
		}
		for _, f := range tx.Fees {
			net[f.AssetID] = net[f.AssetID].Sub(f.Amount)
		}
	}
	return net
}
