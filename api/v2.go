package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/oauth"
	"github.com/opencalico/opencalico/price"
	"github.com/opencalico/opencalico/provider"
	"github.com/opencalico/opencalico/store"
)

// V2 is what the Platform API v2 needs: the store it reads, the provider catalog, the
// valuer that puts fiat values on amounts (nil leaves every value null), the bearer-token
// check, and the key that signs cursors.
type V2 struct {
	Store        *store.Store
	Catalog      *provider.Registry
	Valuer       *price.Valuer
	Authenticate func(http.Handler) http.Handler
	CursorKey    []byte
	// Syncs queues refreshes; RefreshCooldown is how soon a connection may be refreshed
	// again (default one minute).
	Syncs           Syncs
	RefreshCooldown time.Duration
	// Connections adds and removes connections.
	Connections Connections
	// RequestsPerMinute is each token's request budget (default DefaultRequestsPerMinute).
	RequestsPerMinute int
}

// MountV2 adds the /accounts/v2 routes.
func (s *Server) MountV2(d V2) {
	h := &v2Handlers{s: s, d: d, cursors: cursorCodec{key: d.CursorKey}, limiter: newTokenLimiter(d.RequestsPerMinute)}
	route := func(pattern string, fn http.HandlerFunc) {
		s.Handle(pattern, d.Authenticate(h.limit(h.versioned(fn))))
	}
	route("GET /accounts/v2/providers/supported", h.supported)
	route("GET /accounts/v2/providers", h.listConnections)
	route("POST /accounts/v2/providers", h.idempotent(h.handler(h.addProviderFor)))
	route("DELETE /accounts/v2/providers", h.handler(h.removeProvidersFor))
	route("POST /accounts/v2/oauth/callback/{provider_id}", h.handler(h.callbackFor))
	route("GET /accounts/v2/assets", h.assets)
	route("GET /accounts/v2/transactions", h.handler(h.transactionsFor))
	route("GET /accounts/v2/transactions/sync", h.handler(h.changesFor))
	route("POST /accounts/v2/assets/refresh", h.idempotent(h.refreshAssets))
	route("POST /accounts/v2/transactions/refresh", h.idempotent(h.refreshTransactions))
	route("GET /accounts/v2/refresh/{refresh_id}", h.refreshStatus)
}

type v2Handlers struct {
	s       *Server
	d       V2
	cursors cursorCodec
	limiter *tokenLimiter
}

// handler turns a handler that returns its error into one that answers it, so that each
// handler reads as the steps of its request and every failure takes one path.
func (h *v2Handlers) handler(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.s.writeError(w, r, err)
		}
	}
}

type versionKey struct{}

// versioned reads Calico-Version (default the newest), refuses unknown versions, and echoes
// the version served.
func (h *v2Handlers) versioned(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := strings.TrimSpace(r.Header.Get("Calico-Version"))
		switch v {
		case "":
			v = VersionLatest
		case Version20, Version21:
		default:
			h.s.writeError(w, r, opencalico.Errorf(opencalico.EBadRequest,
				"Calico-Version %q is not supported: use 2.0 or 2.1 (the default).", opencalico.Excerpt(v, 20)))
			return
		}
		w.Header().Set("Calico-Version", v)
		next(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, v)))
	}
}

func version(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok {
		return v
	}
	return VersionLatest
}

// principal is the caller: the user and partner the token names.
func principal(r *http.Request) (*oauth.Principal, error) {
	p, ok := oauth.FromContext(r.Context())
	if !ok || p.UserID == "" {
		return nil, opencalico.Errorf(opencalico.EUnauthorized, "A user access token is required.")
	}
	return p, nil
}

// listParams are the query parameters every list shares.
type listParams struct {
	limit  int
	cursor string
}

func parseList(q url.Values) (listParams, error) {
	p := listParams{limit: 30, cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, opencalico.Errorf(opencalico.EBadRequest, "limit must be a whole number from 1 to 100.")
		}
		p.limit = n
	}
	return p, nil
}

// csv splits a comma-separated parameter, dropping blanks.
func csv(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// parseTime reads an RFC 3339 time or epoch milliseconds.
func parseTime(q url.Values, name string) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, opencalico.Errorf(opencalico.EBadRequest, "%s must be an RFC 3339 time or epoch milliseconds.", name)
	}
	return t.UTC(), nil
}

func currency(q url.Values) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(q.Get("currency")))
	if c == "" {
		return "USD", nil
	}
	if len(c) != 3 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", opencalico.Errorf(opencalico.EBadRequest, "currency must be an ISO 4217 code such as USD or EUR.")
	}
	return c, nil
}

// page builds PageData and the next cursor when more rows exist.
func (h *v2Handlers) page(kind, bind string, limit int, more bool, last any) (*PageData, error) {
	p := &PageData{Limit: limit, HasMore: more}
	if more {
		c, err := h.cursors.encode(kind, bind, last)
		if err != nil {
			return nil, err
		}
		p.NextCursor = &c
	}
	return p, nil
}

func caller(p *oauth.Principal) string { return p.UserID + "/" + p.ClientID }

func (h *v2Handlers) supported(w http.ResponseWriter, r *http.Request) {
	v := version(r.Context())
	providers := []providerView{}
	for _, p := range h.d.Catalog.Catalog() {
		providers = append(providers, providerOf(p, v))
	}
	writeData(w, http.StatusOK, map[string]any{"providers": providers}, nil, nil)
}

// connectionErrors names each connection whose data is stale or failed, for the errors[] of
// a read: the data served is still the last good one.
func connectionErrors(conns []*opencalico.Connection) []ErrorItem {
	var out []ErrorItem
	for _, c := range conns {
		switch c.Status {
		case opencalico.StatusError, opencalico.StatusReauthRequired:
			cause := c.StatusDetail.Cause
			if c.Status == opencalico.StatusReauthRequired {
				cause = opencalico.EReauthRequired
			}
			if cause == "" {
				cause = opencalico.EProviderError
			}
			msg := statusDetailText(c.StatusDetail)
			if msg == "" {
				msg = "The last sync of this connection failed."
			}
			if c.LastSyncedAt != nil {
				msg += " Its data is from " + timeString(*c.LastSyncedAt) + "."
			}
			out = append(out, ErrorItem{ProviderID: string(c.ProviderID), Cause: string(cause),
				Message: "Connection " + c.ID + ": " + msg})
		}
	}
	return out
}

func (h *v2Handlers) catalogEntry(id opencalico.ProviderID) opencalico.Provider {
	if a, err := h.d.Catalog.Adapter(id); err == nil {
		return a.Provider()
	}
	return opencalico.Provider{ID: id, Name: string(id)}
}

func (h *v2Handlers) listConnections(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	conns, err := h.d.Store.ListConnections(r.Context(), p.UserID)
	if err != nil {
		h.s.writeError(w, r, err)
		return
	}
	v := version(r.Context())
	items := []any{}
	for _, c := range conns {
		if v == Version20 {
			pv := providerOf(h.catalogEntry(c.ProviderID), v)
			pv.ConnectionID, pv.DisplayLabel = c.ID, c.DisplayLabel
			items = append(items, pv)
			continue
		}
		items = append(items, connectionOf(c, h.catalogEntry(c.ProviderID)))
	}
	writeData(w, http.StatusOK, map[string]any{"providers": items}, connectionErrors(conns), nil)
}

// visible returns the caller's connections that match the provider and connection filters,
// and their display labels. A connection id that is not the caller's is simply not found:
// ids of others cannot be probed.
func (h *v2Handlers) visible(ctx context.Context, userID string, q url.Values) ([]*opencalico.Connection, map[string]string, error) {
	conns, err := h.d.Store.ListConnections(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	providers, ids := csv(q, "provider_ids"), csv(q, "connection_ids")
	labels := map[string]string{}
	var out []*opencalico.Connection
	for _, c := range conns {
		if len(providers) > 0 && !slices.Contains(providers, string(c.ProviderID)) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, c.ID) {
			continue
		}
		labels[c.ID] = c.DisplayLabel
		out = append(out, c)
	}
	return out, labels, nil
}

func connectionIDs(conns []*opencalico.Connection) []string {
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
	}
	return ids
}

type positionCursor struct {
	ConnectionID string `json:"c,omitempty"`
	AssetSymbol  string `json:"a"`
	Chain        string `json:"n,omitempty"`
	AssetID      string `json:"i,omitempty"`
}

func (h *v2Handlers) assets(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err == nil {
		err = h.assetsFor(w, r, p, r.URL.Query())
	}
	if err != nil {
		h.s.writeError(w, r, err)
	}
}

func (h *v2Handlers) assetsFor(w http.ResponseWriter, r *http.Request, p *oauth.Principal, q url.Values) error {
	ctx := r.Context()
	lp, err := parseList(q)
	if err != nil {
		return err
	}
	cur, err := currency(q)
	if err != nil {
		return err
	}
	groupBy := q.Get("group_by")
	if groupBy != "" && groupBy != "asset" {
		return opencalico.Errorf(opencalico.EBadRequest, "group_by must be asset (or left out).")
	}
	conns, labels, err := h.visible(ctx, p.UserID, q)
	if err != nil {
		return err
	}
	bind := binding("assets", caller(p), q)
	var after positionCursor
	if lp.cursor != "" {
		if err := h.cursors.decode(lp.cursor, "assets", bind, &after); err != nil {
			return err
		}
	}
	f := store.PositionFilter{UserID: p.UserID, ConnectionIDs: connectionIDs(conns), AssetSymbols: csv(q, "asset_symbols")}
	if len(conns) == 0 {
		writeData(w, http.StatusOK, map[string]any{"assets": []assetPositionView{}}, nil, &PageData{Limit: lp.limit})
		return nil
	}
	if groupBy == "asset" {
		return h.groupedAssets(w, r, f, labels, conns, lp, cur, bind, after)
	}
	if lp.cursor != "" {
		f.After = &store.PositionKey{ConnectionID: after.ConnectionID, AssetSymbol: after.AssetSymbol, Chain: after.Chain, AssetID: after.AssetID}
	}
	f.Limit = lp.limit + 1
	positions, err := h.d.Store.ListPositions(ctx, f)
	if err != nil {
		return err
	}
	more := len(positions) > lp.limit
	positions = positions[:min(len(positions), lp.limit)]
	values, err := h.valuePositions(ctx, positions, cur)
	if err != nil {
		return err
	}
	out := make([]assetPositionView, len(positions))
	for i, pos := range positions {
		out[i] = positionOf(pos, labels[pos.ConnectionID], values[i])
	}
	var last positionCursor
	if len(positions) > 0 {
		k := positions[len(positions)-1]
		last = positionCursor{ConnectionID: k.ConnectionID, AssetSymbol: k.AssetSymbol, Chain: k.Chain, AssetID: k.AssetID}
	}
	pg, err := h.page("assets", bind, lp.limit, more, last)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, map[string]any{"assets": out}, connectionErrors(conns), pg)
	return nil
}

func (h *v2Handlers) valuePositions(ctx context.Context, ps []opencalico.Position, cur string) ([]price.PositionValue, error) {
	if h.d.Valuer == nil {
		return make([]price.PositionValue, len(ps)), nil
	}
	return h.d.Valuer.ValuePositions(ctx, ps, cur)
}

// groupedAssets answers group_by=asset: one row per asset across the connections, with the
// parts in sources[]. A user holds hundreds of positions at most, so they are grouped in
// memory and paged by asset.
func (h *v2Handlers) groupedAssets(w http.ResponseWriter, r *http.Request, f store.PositionFilter, labels map[string]string,
	conns []*opencalico.Connection, lp listParams, cur, bind string, after positionCursor) error {
	ctx := r.Context()
	positions, err := h.d.Store.ListPositions(ctx, f)
	if err != nil {
		return err
	}
	values, err := h.valuePositions(ctx, positions, cur)
	if err != nil {
		return err
	}
	type group struct {
		view    assetPositionView
		total   decimal.Decimal
		valued  bool
		unknown bool
		price   *currencyValue
	}
	groups := map[string]*group{}
	var keys []string
	for i, pos := range positions {
		key := pos.AssetSymbol + "\x00" + pos.AssetID
		g, ok := groups[key]
		if !ok {
			g = &group{view: assetPositionView{AssetSymbol: pos.AssetSymbol, AssetName: optional(pos.AssetName),
				AssetID: optional(pos.AssetID), Chain: optional(pos.Chain)}}
			g.view.Quantity, g.view.Available, g.view.Locked, g.view.Staked = "0", "0", "0", "0"
			groups[key] = g
			keys = append(keys, key)
		}
		add := func(s *string, d decimal.Decimal) { *s = decimal.RequireFromString(*s).Add(d).String() }
		add(&g.view.Quantity, pos.Quantity)
		add(&g.view.Available, pos.Available)
		add(&g.view.Locked, pos.Locked)
		add(&g.view.Staked, pos.Staked)
		if t := timeString(pos.UpdatedAt); t > g.view.UpdatedAt {
			g.view.UpdatedAt = t
		}
		v := values[i]
		if v.Value == nil {
			g.unknown = true
		} else {
			g.total = g.total.Add(v.Value.Amount)
			g.valued = true
		}
		if g.price == nil {
			g.price = valueView(v.Price)
		}
		g.view.Sources = append(g.view.Sources, assetSource{ProviderID: string(pos.ProviderID), ConnectionID: pos.ConnectionID,
			DisplayLabel: labels[pos.ConnectionID], Quantity: decimalString(pos.Quantity), Value: valueView(v.Value)})
	}
	sort.Strings(keys)
	start := 0
	if lp.cursor != "" {
		start = sort.SearchStrings(keys, after.AssetSymbol+"\x00"+after.AssetID)
		if start < len(keys) && keys[start] == after.AssetSymbol+"\x00"+after.AssetID {
			start++
		}
	}
	end := min(start+lp.limit, len(keys))
	out := []assetPositionView{}
	for _, k := range keys[start:end] {
		g := groups[k]
		g.view.Price = g.price
		if g.valued && !g.unknown {
			g.view.Value = &currencyValue{Amount: decimalString(g.total), Currency: cur}
		}
		out = append(out, g.view)
	}
	var last positionCursor
	if end > start {
		g := groups[keys[end-1]]
		last = positionCursor{AssetSymbol: g.view.AssetSymbol}
		if g.view.AssetID != nil {
			last.AssetID = *g.view.AssetID
		}
	}
	pg, err := h.page("assets", bind, lp.limit, end < len(keys), last)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, map[string]any{"assets": out}, connectionErrors(conns), pg)
	return nil
}

type transactionCursor struct {
	TS time.Time `json:"t"`
	ID string    `json:"i"`
}

func (h *v2Handlers) transactionsFor(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	p, err := principal(r)
	if err != nil {
		return err
	}
	lp, err := parseList(q)
	if err != nil {
		return err
	}
	cur, err := currency(q)
	if err != nil {
		return err
	}
	f := store.TransactionFilter{UserID: p.UserID, AssetSymbols: csv(q, "asset_symbols"), Limit: lp.limit + 1}
	for _, t := range csv(q, "types") {
		if !opencalico.TransactionType(t).Valid() {
			return opencalico.Errorf(opencalico.EBadRequest, "Unknown transaction type %q.", opencalico.Excerpt(t, 30))
		}
		f.Types = append(f.Types, opencalico.TransactionType(t))
	}
	for _, c := range csv(q, "categories") {
		if !opencalico.Category(c).Valid() {
			return opencalico.Errorf(opencalico.EBadRequest, "Unknown category %q.", opencalico.Excerpt(c, 30))
		}
		f.Categories = append(f.Categories, opencalico.Category(c))
	}
	if f.Start, err = parseTime(q, "start_time"); err != nil {
		return err
	}
	if f.End, err = parseTime(q, "end_time"); err != nil {
		return err
	}
	if !f.Start.IsZero() && !f.End.IsZero() && f.Start.After(f.End) {
		return opencalico.Errorf(opencalico.EBadRequest, "start_time is after end_time.")
	}
	switch o := q.Get("order"); o {
	case "", "desc":
		f.Order = store.Desc
	case "asc":
		f.Order = store.Asc
	default:
		return opencalico.Errorf(opencalico.EBadRequest, "order must be desc or asc.")
	}
	conns, labels, err := h.visible(ctx, p.UserID, q)
	if err != nil {
		return err
	}
	bind := binding("transactions", caller(p), q)
	if lp.cursor != "" {
		var after transactionCursor
		if err := h.cursors.decode(lp.cursor, "transactions", bind, &after); err != nil {
			return err
		}
		f.After = &store.TransactionKey{Timestamp: after.TS, ID: after.ID}
	}
	if len(conns) == 0 {
		writeData(w, http.StatusOK, map[string]any{"transactions": []transactionView{}}, nil, &PageData{Limit: lp.limit})
		return nil
	}
	f.ConnectionIDs = connectionIDs(conns)
	txns, err := h.d.Store.ListTransactions(ctx, f)
	if err != nil {
		return err
	}
	more := len(txns) > lp.limit
	txns = txns[:min(len(txns), lp.limit)]
	views, err := h.transactionViews(ctx, txns, labels, cur)
	if err != nil {
		return err
	}
	var last transactionCursor
	if len(txns) > 0 {
		last = transactionCursor{TS: txns[len(txns)-1].Timestamp, ID: txns[len(txns)-1].ID}
	}
	pg, err := h.page("transactions", bind, lp.limit, more, last)
	if err != nil {
		return err
	}
	writeData(w, http.StatusOK, map[string]any{"transactions": views}, connectionErrors(conns), pg)
	return nil
}

func (h *v2Handlers) transactionViews(ctx context.Context, txns []*opencalico.Transaction, labels map[string]string, cur string) ([]transactionView, error) {
	var values []price.TxValues
	if h.d.Valuer != nil && len(txns) > 0 {
		var err error
		if values, err = h.d.Valuer.ValueTransactions(ctx, txns, cur); err != nil {
			return nil, err
		}
	}
	out := make([]transactionView, len(txns))
	for i, t := range txns {
		var v *price.TxValues
		if values != nil {
			v = &values[i]
		}
		out[i] = transactionOf(t, labels[t.ConnectionID], v)
	}
	return out, nil
}

type changesCursor struct {
	Seq  int64  `json:"s"`
	ID   string `json:"i"`
	Base int64  `json:"b"` // where the reader's walk began (store.ChangeKey.Base)
}

func (h *v2Handlers) changesFor(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	p, err := principal(r)
	if err != nil {
		return err
	}
	lp, err := parseList(q)
	if err != nil {
		return err
	}
	if q.Get("limit") == "" {
		lp.limit = 100
	}
	cur, err := currency(q)
	if err != nil {
		return err
	}
	// The feed's cursor is bound to the caller only: a partner keeps it between calls made
	// with other currencies and limits.
	bind := binding("changes", caller(p), url.Values{})
	var after changesCursor
	if lp.cursor != "" {
		if err := h.cursors.decode(lp.cursor, "changes", bind, &after); err != nil {
			return err
		}
	}
	conns, labels, err := h.visible(ctx, p.UserID, url.Values{})
	if err != nil {
		return err
	}
	set, err := h.d.Store.Changes(ctx, store.ChangesFilter{UserID: p.UserID,
		After: store.ChangeKey{Seq: after.Seq, ID: after.ID, Base: after.Base}, Limit: lp.limit})
	if err != nil {
		return err
	}
	added, err := h.transactionViews(ctx, set.Added, labels, cur)
	if err != nil {
		return err
	}
	modified, err := h.transactionViews(ctx, set.Modified, labels, cur)
	if err != nil {
		return err
	}
	next, err := h.cursors.encode("changes", bind, changesCursor{Seq: set.Next.Seq, ID: set.Next.ID, Base: set.Next.Base})
	if err != nil {
		return err
	}
	removed := set.Removed
	if removed == nil {
		removed = []string{}
	}
	writeData(w, http.StatusOK, map[string]any{"added": added, "modified": modified, "removed": removed,
		"next_cursor": next, "has_more": set.HasMore}, connectionErrors(conns), nil)
	return nil
}
