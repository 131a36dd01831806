package opencalico

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// TransactionType names the shape of a transaction: which legs it has.
type TransactionType string

// The transaction types, one per member of the API's `Transactions data` union.
const (
	TypeSend          TransactionType = "send"
	TypeReceive       TransactionType = "receive"
	TypeInputOnly     TransactionType = "input_only"
	TypeOutputOnly    TransactionType = "output_only"
	TypeInputOutput   TransactionType = "input_output"
	TypeUncategorized TransactionType = "uncategorized"
)

// TransactionTypes lists every type.
var TransactionTypes = []TransactionType{
	TypeSend, TypeReceive, TypeInputOnly, TypeOutputOnly, TypeInputOutput, TypeUncategorized,
}

// Valid reports whether t is one of the defined types.
func (t TransactionType) Valid() bool { return slices.Contains(TransactionTypes, t) }

// Category is the economic meaning of a transaction.
type Category string

// The categories.
const (
	CategoryTrade               Category = "trade"
	CategoryTransfer            Category = "transfer"
	CategoryDeposit             Category = "deposit"
	CategoryWithdrawal          Category = "withdrawal"
	CategoryPayment             Category = "payment"
	CategoryFee                 Category = "fee"
	CategoryStaking             Category = "staking"
	CategoryUnstaking           Category = "unstaking"
	CategoryStakingReward       Category = "staking_reward"
	CategoryInterest            Category = "interest"
	CategoryAirdrop             Category = "airdrop"
	CategoryMining              Category = "mining"
	CategoryBonus               Category = "bonus"
	CategoryIncome              Category = "income"
	CategoryGift                Category = "gift"
	CategoryLoss                Category = "loss"
	CategoryNFT                 Category = "nft"
	CategoryContractInteraction Category = "contract_interaction"
	CategorySpam                Category = "spam"
	CategoryMargin              Category = "margin"
	CategoryOther               Category = "other"
)

// Categories lists every category.
var Categories = []Category{
	CategoryTrade, CategoryTransfer, CategoryDeposit, CategoryWithdrawal, CategoryPayment,
	CategoryFee, CategoryStaking, CategoryUnstaking, CategoryStakingReward, CategoryInterest,
	CategoryAirdrop, CategoryMining, CategoryBonus, CategoryIncome, CategoryGift, CategoryLoss,
	CategoryNFT, CategoryContractInteraction, CategorySpam, CategoryMargin, CategoryOther,
}

// Valid reports whether c is one of the defined categories.
func (c Category) Valid() bool { return slices.Contains(Categories, c) }

// TransactionStatus is the settlement state of a transaction.
type TransactionStatus string

// The transaction statuses.
const (
	TxPending   TransactionStatus = "pending"
	TxConfirmed TransactionStatus = "confirmed"
	TxFailed    TransactionStatus = "failed"
)

// Valid reports whether s is one of the defined statuses.
func (s TransactionStatus) Valid() bool {
	return s == TxPending || s == TxConfirmed || s == TxFailed
}

// FeeKind says what a fee paid for.
type FeeKind string

// The fee kinds.
const (
	FeeNetwork    FeeKind = "network"
	FeeTrading    FeeKind = "trading"
	FeeWithdrawal FeeKind = "withdrawal"
	FeeOther      FeeKind = "other"
)

// Valid reports whether k is one of the defined kinds.
func (k FeeKind) Valid() bool {
	return k == FeeNetwork || k == FeeTrading || k == FeeWithdrawal || k == FeeOther
}

// Categorization is the category, an optional finer subcategory, and the provider's own word
// for the event (TransactionCategorization in the API).
type Categorization struct {
	Category     Category
	Subcategory  string
	ProviderType string
}

// Leg is an amount of one asset that left (input) or arrived in (output) the account. Amounts
// are never negative: the side says the direction.
type Leg struct {
	AssetSymbol string
	AssetID     string
	Amount      decimal.Decimal
	Address     string
}

// Fee is an amount of one asset paid as a fee (FeeItem in the API).
type Fee struct {
	AssetSymbol string
	AssetID     string
	Amount      decimal.Decimal
	Kind        FeeKind
}

// Transaction is one economic event in one connection, normalized. A trade is one
// transaction with an input and an output leg, not two.
type Transaction struct {
	// ID is stable across re-syncs: it is derived from the connection and ExternalID.
	ID           string
	UserID       string
	ConnectionID string
	ProviderID   ProviderID
	// ExternalID is the natural key made from the provider's own ids (a Kraken refid, a
	// Binance "trade:BTCUSDT:123", a transaction hash). Storing the same ExternalID twice in
	// one connection updates one row; it never adds a second.
	ExternalID     string
	Type           TransactionType
	Categorization Categorization
	Status         TransactionStatus
	Timestamp      time.Time
	Inputs         []Leg
	Outputs        []Leg
	Fees           []Fee
	TxHash         string
	Chain          string
	FromAddress    string
	ToAddress      string
	Description    string
	// TransferID links this transaction with the opposite side of the same movement in another
	// of the user's connections.
	TransferID string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// TransactionID derives the public id of the transaction with the given natural key in a
// connection. It is a pure function so that a re-sync finds the same id without a lookup.
func TransactionID(connectionID, externalID string) string {
	h := sha256.Sum256([]byte(connectionID + "\x00" + externalID))
	return "txn_" + idEncoding.EncodeToString(h[:16])
}

// Validate checks that t is complete and self-consistent: known enums, non-negative amounts,
// and legs that match its type.
func (t *Transaction) Validate() error {
	bad := func(format string, args ...any) error {
		return Errorf(EBadRequest, "transaction %q: %s", t.ExternalID, fmt.Sprintf(format, args...))
	}
	switch {
	case t.ConnectionID == "":
		return bad("no connection id")
	case t.ExternalID == "":
		return Errorf(EBadRequest, "transaction without an external id")
	case !t.Type.Valid():
		return bad("unknown type %q", t.Type)
	case !t.Categorization.Category.Valid():
		return bad("unknown category %q", t.Categorization.Category)
	case !t.Status.Valid():
		return bad("unknown status %q", t.Status)
	case t.Timestamp.IsZero():
		return bad("no timestamp")
	}
	for _, l := range append(slices.Clip(t.Inputs), t.Outputs...) {
		if l.AssetSymbol == "" {
			return bad("a leg has no asset")
		}
		if l.Amount.IsNegative() {
			return bad("a leg of %s has a negative amount %s", l.AssetSymbol, l.Amount)
		}
	}
	for _, f := range t.Fees {
		if f.AssetSymbol == "" {
			return bad("a fee has no asset")
		}
		if f.Amount.IsNegative() {
			return bad("a fee of %s has a negative amount %s", f.AssetSymbol, f.Amount)
		}
		if !f.Kind.Valid() {
			return bad("unknown fee kind %q", f.Kind)
		}
	}
	in, out := len(t.Inputs) > 0, len(t.Outputs) > 0
	switch t.Type {
	case TypeSend, TypeInputOnly:
		if !in || out {
			return bad("type %s takes inputs only", t.Type)
		}
	case TypeReceive, TypeOutputOnly:
		if in || !out {
			return bad("type %s takes outputs only", t.Type)
		}
	case TypeInputOutput:
		if !in || !out {
			return bad("type %s takes inputs and outputs", t.Type)
		}
	}
	return nil
}

// ContentHash returns a digest of everything a provider can change about the event. Two
// syncs that read the same event produce the same hash, so the store can tell "unchanged"
// from "modified" without comparing column by column. Bookkeeping (ids, created/updated
// times) is left out.
func (t *Transaction) ContentHash() string {
	var b strings.Builder
	field := func(s string) { b.WriteString(s); b.WriteByte(0) }
	field(string(t.ProviderID))
	field(string(t.Type))
	field(string(t.Categorization.Category))
	field(t.Categorization.Subcategory)
	field(t.Categorization.ProviderType)
	field(string(t.Status))
	field(t.Timestamp.UTC().Format(time.RFC3339Nano))
	for _, side := range [][]Leg{t.Inputs, t.Outputs} {
		field(fmt.Sprint(len(side)))
		for _, l := range side {
			field(l.AssetSymbol)
			field(l.AssetID)
			field(l.Amount.String())
			field(l.Address)
		}
	}
	field(fmt.Sprint(len(t.Fees)))
	for _, f := range t.Fees {
		field(f.AssetSymbol)
		field(f.AssetID)
		field(f.Amount.String())
		field(string(f.Kind))
	}
	field(t.TxHash)
	field(t.Chain)
	field(t.FromAddress)
	field(t.ToAddress)
	field(t.Description)
	field(t.TransferID)
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:16])
}

// Assets returns the distinct asset symbols the transaction touches, in legs and fees.
func (t *Transaction) Assets() []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, l := range t.Inputs {
		add(l.AssetSymbol)
	}
	for _, l := range t.Outputs {
		add(l.AssetSymbol)
	}
	for _, f := range t.Fees {
		add(f.AssetSymbol)
	}
	return out
}
