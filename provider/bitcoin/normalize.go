package bitcoin

import (
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// Asset facts of bitcoin.
const (
	AssetSymbol = "BTC"
	// AssetID is the CAIP-19 id of bitcoin on mainnet (BIP122 genesis hash, SLIP-44 coin 0).
	AssetID = "bip122:000000000019d6689c085ae165831e93/slip44:0"
	// Chain is the chain name of transactions and positions.
	Chain = "bitcoin"
)

// Sats converts satoshis to bitcoin exactly.
func Sats(n int64) decimal.Decimal { return decimal.New(n, -8) }

// Normalize is the wallet's view of one transaction: its net effect on the wallet (outputs
// to the wallet's addresses minus the prevouts it spends from them), as one transaction
// however many of the wallet's addresses it touches. The fee is the wallet's only when the
// wallet funded inputs; then the legs exclude it, so that outputs − inputs − fees is the net
// effect exactly. isMine tells the wallet's addresses; firstSeen stamps an unconfirmed
// transaction, which has no block time. It returns nil when the transaction does not touch
// the wallet.
func Normalize(connectionID string, tx Tx, isMine func(address string) bool, firstSeen time.Time) *opencalico.Transaction {
	var walletIn, walletOut int64
	allMine := true
	var mineFrom, mineTo, otherFrom string
	coinbase := false
	for _, in := range tx.Vin {
		if in.IsCoinbase || in.Prevout == nil {
			coinbase = coinbase || in.IsCoinbase
			allMine = false
			continue
		}
		if isMine(in.Prevout.ScriptPubKeyAddress) {
			walletIn += in.Prevout.Value
			if mineFrom == "" {
				mineFrom = in.Prevout.ScriptPubKeyAddress
			}
		} else {
			allMine = false
			if otherFrom == "" {
				otherFrom = in.Prevout.ScriptPubKeyAddress
			}
		}
	}
	// The main external recipient is the largest output that is not the wallet's.
	var otherTo string
	var otherToValue int64 = -1
	for _, out := range tx.Vout {
		if out.ScriptPubKeyAddress != "" && isMine(out.ScriptPubKeyAddress) {
			walletOut += out.Value
			if mineTo == "" {
				mineTo = out.ScriptPubKeyAddress
			}
			continue
		}
		allMine = false
		if out.ScriptPubKeyAddress != "" && out.Value > otherToValue {
			otherTo, otherToValue = out.ScriptPubKeyAddress, out.Value
		}
	}
	if walletIn == 0 && walletOut == 0 {
		return nil
	}

	t := &opencalico.Transaction{
		ConnectionID: connectionID,
		ProviderID:   ProviderID,
		ExternalID:   tx.TxID,
		TxHash:       tx.TxID,
		Chain:        Chain,
		Status:       opencalico.TxConfirmed,
		Categorization: opencalico.Categorization{
			ProviderType: "transaction",
		},
	}
	t.ID = opencalico.TransactionID(connectionID, t.ExternalID)
	if tx.Status.Confirmed {
		t.Timestamp = time.Unix(tx.Status.BlockTime, 0).UTC()
	} else {
		t.Status = opencalico.TxPending
		t.Timestamp = firstSeen.UTC()
	}
	leg := func(sats int64, address string) []opencalico.Leg {
		return []opencalico.Leg{{AssetSymbol: AssetSymbol, AssetID: AssetID, Amount: Sats(sats), Address: address}}
	}

	if walletIn == 0 {
		// Received from others: they paid the fee.
		t.Type = opencalico.TypeReceive
		t.Categorization.Category = opencalico.CategoryDeposit
		if coinbase {
			t.Categorization.Category = opencalico.CategoryMining
			t.Categorization.ProviderType = "coinbase"
		}
		t.Outputs = leg(walletOut, mineTo)
		t.FromAddress, t.ToAddress = otherFrom, mineTo
		return t
	}

	// The wallet funded inputs: the fee is its own.
	t.Fees = []opencalico.Fee{{AssetSymbol: AssetSymbol, AssetID: AssetID, Amount: Sats(tx.Fee), Kind: opencalico.FeeNetwork}}
	moved := walletOut - walletIn + tx.Fee // the net effect without the fee
	switch {
	case moved == 0:
		// Between the wallet's own addresses (every input and output is the wallet's, so the
		// fee is all that leaves): a transfer. The zero input leg keeps the shape of
		// input_only (inputs only) and names the spending address.
		t.Type = opencalico.TypeInputOnly
		t.Categorization.Category = opencalico.CategoryTransfer
		if allMine {
			t.Categorization.Subcategory = "self_transfer"
		}
		t.Inputs = leg(0, mineFrom)
		t.FromAddress, t.ToAddress = mineFrom, mineTo
	case moved < 0:
		t.Type = opencalico.TypeSend
		t.Categorization.Category = opencalico.CategoryWithdrawal
		t.Inputs = leg(-moved, mineFrom)
		t.FromAddress, t.ToAddress = mineFrom, otherTo
	default:
		// The wallet funded inputs and still received more than it paid (a payjoin, a
		// coinjoin round's share): a receive that carries the fee.
		t.Type = opencalico.TypeReceive
		t.Categorization.Category = opencalico.CategoryDeposit
		t.Outputs = leg(moved, mineTo)
		t.FromAddress, t.ToAddress = otherFrom, mineTo
	}
	return t
}
