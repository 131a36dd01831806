package solana

import (
	"sort"
	"time"

	"github.com/opencalico/opencalico"
	"github.com/shopspring/decimal"
)

// Asset facts of Solana mainnet.
const (
	Chain = "solana"
	// ChainID is the CAIP-2 id of Solana mainnet (its genesis hash, truncated).
	ChainID = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
	// SOLAssetID is native SOL (SLIP-44 coin 501).
	SOLAssetID = ChainID + "/slip44:501"
	SOLSymbol  = "SOL"
	// SOLDecimals: a lamport is 10⁻⁹ SOL.
	SOLDecimals = 9
)

// knownMints names well-known SPL mints; others go by the first 6 characters of the mint.
var knownMints = map[string]string{
	"EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v": "USDC",
	"Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB": "USDT",
	"So11111111111111111111111111111111111111112":  "WSOL",
}

// TokenAssetID is the CAIP-19 id of an SPL token.
func TokenAssetID(mint string) string { return ChainID + "/token:" + mint }

// TokenSymbol is a mint's symbol from the built-in table, else its first 6 characters.
func TokenSymbol(mint string) string {
	if s, ok := knownMints[mint]; ok {
		return s
	}
	if len(mint) > 6 {
		return mint[:6]
	}
	return mint
}

// Lamports converts lamports to SOL exactly.
func Lamports(n int64) decimal.Decimal { return decimal.New(n, -SOLDecimals) }

// baseUnits converts a token amount (a u64 in decimal) to tokens exactly.
func baseUnits(amount string, decimals int32) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return decimal.Zero, err
	}
	return d.Shift(-decimals), nil
}

// Normalize is the wallet's view of one transaction: the change of the wallet's own account
// (SOL) and of the token accounts it owns (per mint), as post − pre. The fee is the wallet's
// when it is the first signer (the fee payer); then the SOL leg excludes it, so that
// outputs − inputs − fees equals post − pre exactly. A failed transaction changes nothing
// but the fee payer's SOL: it is the fee alone, or nothing for a wallet that did not pay.
// It returns nil when the transaction does not change the wallet.
func Normalize(connectionID, wallet, signature string, tx *Tx) *opencalico.Transaction {
	if tx == nil || tx.Meta == nil {
		return nil
	}
	keys := tx.Transaction.Message.AccountKeys
	meta := tx.Meta
	payer := ""
	if len(keys) > 0 {
		payer = keys[0].Pubkey
	}
	pays := payer == wallet

	t := &opencalico.Transaction{
		ConnectionID: connectionID,
		ProviderID:   ProviderID,
		ExternalID:   signature,
		TxHash:       signature,
		Chain:        Chain,
		Status:       opencalico.TxConfirmed,
	}
	t.ID = opencalico.TransactionID(connectionID, signature)
	if tx.BlockTime != nil {
		t.Timestamp = time.Unix(*tx.BlockTime, 0).UTC()
	}
	sol := func(lamports int64) opencalico.Leg {
		return opencalico.Leg{AssetSymbol: SOLSymbol, AssetID: SOLAssetID, Amount: Lamports(lamports), Address: wallet}
	}
	if pays {
		t.Fees = []opencalico.Fee{{AssetSymbol: SOLSymbol, AssetID: SOLAssetID, Amount: Lamports(int64(meta.Fee)), Kind: opencalico.FeeNetwork}}
	}

	if meta.failed() {
		if !pays {
			return nil
		}
		// A failed transaction still pays its fee, and only that. It is kept as confirmed
		// (the fee was debited on chain) with a zero input leg naming the payer, the shape
		// of input_only.
		t.Type = opencalico.TypeInputOnly
		t.Categorization = opencalico.Categorization{Category: opencalico.CategoryFee, Subcategory: "failed_transaction", ProviderType: "failed"}
		t.Inputs = []opencalico.Leg{sol(0)}
		t.FromAddress = wallet
		return t
	}

	// SOL: the wallet's own account, fee excluded when it paid it.
	var solDelta int64
	walletIndex := -1
	for i, k := range keys {
		if k.Pubkey == wallet {
			walletIndex = i
			break
		}
	}
	if walletIndex >= 0 && walletIndex < len(meta.PreBalances) && walletIndex < len(meta.PostBalances) {
		solDelta = int64(meta.PostBalances[walletIndex]) - int64(meta.PreBalances[walletIndex])
	}
	if pays {
		solDelta += int64(meta.Fee)
	}

	// Tokens: every token account the wallet owns, summed per mint.
	type tokenDelta struct {
		delta    decimal.Decimal
		decimals int32
		account  string
	}
	tokens := map[string]*tokenDelta{}
	add := func(bals []TokenBalance, sign int64) {
		for _, b := range bals {
			if b.Owner != wallet {
				continue
			}
			amt, err := baseUnits(b.UITokenAmount.Amount, b.UITokenAmount.Decimals)
			if err != nil {
				continue
			}
			d := tokens[b.Mint]
			if d == nil {
				d = &tokenDelta{decimals: b.UITokenAmount.Decimals}
				if b.AccountIndex >= 0 && b.AccountIndex < len(keys) {
					d.account = keys[b.AccountIndex].Pubkey
				}
				tokens[b.Mint] = d
			}
			d.delta = d.delta.Add(amt.Mul(decimal.NewFromInt(sign)))
		}
	}
	add(meta.PreTokenBalances, -1)
	add(meta.PostTokenBalances, 1)

	if solDelta < 0 {
		t.Inputs = append(t.Inputs, sol(-solDelta))
	} else if solDelta > 0 {
		t.Outputs = append(t.Outputs, sol(solDelta))
	}
	mints := make([]string, 0, len(tokens))
	for m := range tokens {
		mints = append(mints, m)
	}
	sort.Strings(mints)
	for _, m := range mints {
		d := tokens[m]
		leg := opencalico.Leg{AssetSymbol: TokenSymbol(m), AssetID: TokenAssetID(m), Amount: d.delta.Abs(), Address: d.account}
		switch d.delta.Sign() {
		case -1:
			t.Inputs = append(t.Inputs, leg)
		case 1:
			t.Outputs = append(t.Outputs, leg)
		}
	}

	counterparty := otherParty(keys, meta, wallet)
	switch in, out := len(t.Inputs) > 0, len(t.Outputs) > 0; {
	case in && out:
		t.Type = opencalico.TypeInputOutput
		t.Categorization = opencalico.Categorization{Category: opencalico.CategoryTrade, Subcategory: "swap", ProviderType: "swap"}
		t.FromAddress, t.ToAddress = wallet, counterparty
	case in:
		t.Type = opencalico.TypeSend
		t.Categorization = opencalico.Categorization{Category: opencalico.CategoryWithdrawal, ProviderType: "transfer"}
		t.FromAddress, t.ToAddress = wallet, counterparty
	case out:
		t.Type = opencalico.TypeReceive
		t.Categorization = opencalico.Categorization{Category: opencalico.CategoryDeposit, ProviderType: "transfer"}
		t.FromAddress, t.ToAddress = payer, wallet
		if pays {
			t.FromAddress = counterparty
		}
	case pays:
		// Nothing moved but the fee (a self-transfer, an account closed to itself, a program
		// call): the fee alone, as input_only with a zero leg.
		t.Type = opencalico.TypeInputOnly
		t.Categorization = opencalico.Categorization{Category: opencalico.CategoryContractInteraction, ProviderType: "transaction"}
		t.Inputs = []opencalico.Leg{sol(0)}
		t.FromAddress = wallet
	default:
		return nil
	}
	return t
}

// otherParty is the main other account of a transfer: the other owner of a token balance
// that moved, else the other account whose SOL moved most.
func otherParty(keys []AccountKey, meta *TxMeta, wallet string) string {
	for _, b := range meta.PostTokenBalances {
		if b.Owner != wallet && b.Owner != "" {
			return b.Owner
		}
	}
	best, bestMove := "", int64(0)
	for i, k := range keys {
		if k.Pubkey == wallet || i >= len(meta.PreBalances) || i >= len(meta.PostBalances) {
			continue
		}
		move := int64(meta.PostBalances[i]) - int64(meta.PreBalances[i])
		if i == 0 {
			move += int64(meta.Fee)
		}
		if move < 0 {
			move = -move
		}
		if move > bestMove {
			best, bestMove = k.Pubkey, move
		}
	}
	return best
}
