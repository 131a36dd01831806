package connect

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/opencalico/opencalico"
)

// page is what a template is given. The common fields are filled by render.
type page struct {
	Title     string
	Client    string // the partner's name
	User      *opencalico.User
	CSRF      string
	Action    string   // where the page's POST forms go
	Hidden    []hidden // the flow's parameters, for GET forms
	Flash     string
	Error     string
	Forbidden bool
	Throttled bool
	Links     links

	Email string // prefilled on the sign-in and sign-up forms
	Label string // prefilled display label

	Query       string
	Providers   []providerItem
	Connections []connectionItem
	Provider    *providerItem
	Fields      []fieldItem
	HelpURL     string
	Consents    []consentItem
	Scope       []string
	// FormTargets are the origins besides this one that the page's forms may end up at
	// (through a redirect): the provider's consent page.
	FormTargets []string
}

type hidden struct{ Name, Value string }

type links struct {
	Home, SignIn, SignUp, Consent, Consents, Pick string
}

type providerItem struct {
	ID, Name, Kind, Initial string
	Link                    string // "" when it cannot be connected here yet
	ComingSoon              bool
	Type                    opencalico.AuthType // the form's auth type (api_key or wallet), "" for none
	// OAuth: it can be connected through its own consent page, at OAuthOrigin.
	OAuth       bool
	OAuthOrigin string
	// Wallet: the form takes a public address; Chains are the chains to choose from when
	// the provider reads several.
	Wallet bool
	Chains []chainOption
}

// chainOption is a network a wallet form offers: the chain id the API takes, and its name.
type chainOption struct{ Value, Label string }

// chainNames are the names people know the chains by.
var chainNames = map[string]string{"ethereum": "Ethereum", "arbitrum": "Arbitrum One", "base": "Base", "polygon": "Polygon PoS"}

func chainOptions(chains []string) []chainOption {
	out := make([]chainOption, len(chains))
	for i, c := range chains {
		label := chainNames[c]
		if label == "" {
			label = c
		}
		out[i] = chainOption{Value: c, Label: label}
	}
	return out
}

type fieldItem struct {
	Name, Label, InputType, Autocomplete string
	Optional                             bool
}

type connectionItem struct {
	ID, Label, Provider, Initial, Status, StatusClass, Detail string
	Created                                                   string
}

type consentItem struct {
	ID, Client, Initial, Scope, Given, Revoked string
	Active                                     bool
}

// templates: one set per page, each the layout plus the page's "content".
var pageNames = []string{"signin", "signup", "home", "provider", "consent", "consents", "message"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page with the common fields and the security headers.
func (w *Widget) render(f *flow, status int, name string, p *page) {
	p.Client = f.req.Client.Name
	if f.user != nil && p.Error == "" {
		p.Error = w.sessions.takeAlert(f.cookie)
	}
	p.User = f.user
	p.CSRF = csrfToken(w.csrfKey, f.cookie)
	p.Action = flowURL(f.r, "", "", "")
	for _, k := range oauthParams {
		if v := f.r.URL.Query().Get(k); v != "" || f.r.URL.Query().Has(k) {
			p.Hidden = append(p.Hidden, hidden{k, v})
		}
	}
	p.Links = links{
		Home: flowURL(f.r, "", "", ""), SignIn: flowURL(f.r, "signin", "", ""), SignUp: flowURL(f.r, "signup", "", ""),
		Consent: flowURL(f.r, "consent", "", ""), Consents: flowURL(f.r, "consents", "", ""), Pick: flowURL(f.r, "", "", "") + "#add",
	}
	if f.user != nil && p.Flash == "" {
		p.Flash = w.sessions.takeFlash(f.cookie)
	}
	if p.Title == "" {
		p.Title = map[string]string{"signin": "Sign in", "signup": "Create your account", "home": "Your accounts",
			"consent": "Allow access", "consents": "Apps with access"}[name]
	}
	var buf bytes.Buffer
	if err := w.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		w.log.ErrorContext(f.r.Context(), "connect: rendering a page", "page", name, "err", err.Error())
		http.Error(f.w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	h := f.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	targets := p.FormTargets
	if name == "consent" {
		targets = append(targets, sourceOf(f.req.RedirectURI))
	}
	h.Set("Content-Security-Policy", contentSecurityPolicy(targets...))
	f.w.WriteHeader(status)
	_, _ = f.w.Write(buf.Bytes())
}

// contentSecurityPolicy is the widget's policy: no script at all, styles and images from this
// origin only, forms posted to this origin only. Chromium applies form-action to the
// redirects that follow a form submission, so a page whose form is answered with a redirect
// elsewhere names that place in targets (CSP source expressions; "" is skipped): the consent
// page the partner's redirect URI (the 303 after "Allow" or "Deny"), a provider's page the
// provider's consent origin (the 303 after "Connect with Coinbase"). Otherwise the person
// would be left on an error page.
func contentSecurityPolicy(targets ...string) string {
	formAction := "'self'"
	for _, src := range targets {
		if src != "" {
			formAction += " " + src
		}
	}
	return "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action " + formAction +
		"; frame-ancestors 'none'; base-uri 'none'"
}

// hostSource is what a CSP host-source can hold without breaking the header's syntax.
var (
	hostSource   = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)
	schemeSource = regexp.MustCompile(`^[a-z][a-z0-9+.\-]*$`)
)

// sourceOf returns the CSP source expression of a redirect URI: its origin for http(s), its
// scheme for a native app's private-use scheme, "" when it cannot be expressed safely.
func sourceOf(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if !schemeSource.MatchString(scheme) {
		return ""
	}
	if scheme == "http" || scheme == "https" {
		if !hostSource.MatchString(u.Host) {
			return ""
		}
		return scheme + "://" + u.Host
	}
	return scheme + ":"
}

// showHome is the main page: what is connected, with its state, and the provider picker.
func (w *Widget) showHome(f *flow, status int, p *page) {
	ctx := f.r.Context()
	list, err := w.cfg.Connections.List(ctx, f.user.ID)
	if err != nil {
		w.internalError(f, err)
		return
	}
	names := map[opencalico.ProviderID]string{}
	for _, pr := range w.cfg.Connections.Catalog() {
		names[pr.ID] = pr.Name
	}
	for _, c := range list {
		p.Connections = append(p.Connections, connectionView(c, names[c.ProviderID]))
	}
	p.Query = strings.TrimSpace(f.r.URL.Query().Get("q"))
	p.Providers = w.pick(f, p.Query)
	w.render(f, status, "home", p)
}

// pick filters the catalog by q (name or id, any case), server-side.
func (w *Widget) pick(f *flow, q string) []providerItem {
	needle := strings.ToLower(q)
	var out []providerItem
	for _, pr := range w.cfg.Connections.Catalog() {
		if needle != "" && !strings.Contains(strings.ToLower(pr.Name), needle) && !strings.Contains(string(pr.ID), needle) {
			continue
		}
		out = append(out, w.providerView(f, pr))
	}
	slices.SortFunc(out, func(a, b providerItem) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	return out
}

// connectable returns the auth type the widget's form connects p with: an API key or a wallet
// address. The provider's own OAuth consent is offered besides (providerView).
func connectable(p opencalico.Provider) (opencalico.AuthType, bool) {
	for _, t := range p.AuthTypes {
		if t == opencalico.AuthAPIKey || t == opencalico.AuthWallet {
			return t, true
		}
	}
	return "", false
}

// providerView is a catalog entry as the picker and the provider page show it: connectable
// with a form, through the provider's consent (when this server has an OAuth client for it),
// both, or neither ("Coming soon").
func (w *Widget) providerView(f *flow, p opencalico.Provider) providerItem {
	it := providerItem{ID: string(p.ID), Name: p.Name, Kind: string(p.Kind), Initial: initial(p.Name)}
	if t, ok := connectable(p); ok {
		it.Type = t
		it.Wallet = t == opencalico.AuthWallet
		if it.Wallet && len(p.Chains) > 1 {
			it.Chains = chainOptions(p.Chains)
		}
	}
	if p.Supports(opencalico.AuthOAuth2) {
		it.OAuthOrigin, it.OAuth = w.cfg.Connections.OAuthReady(p.ID)
	}
	if it.Type != "" || it.OAuth {
		it.Link = flowURL(f.r, "provider", string(p.ID), "")
	} else {
		it.ComingSoon = true
	}
	return it
}

func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return "?"
}

var statusText = map[opencalico.ConnectionStatus]string{
	opencalico.StatusPending:        "Waiting for its first sync",
	opencalico.StatusSyncing:        "Syncing",
	opencalico.StatusActive:         "Up to date",
	opencalico.StatusError:          "Sync failed",
	opencalico.StatusReauthRequired: "Needs new credentials",
}

func connectionView(c *opencalico.Connection, providerName string) connectionItem {
	if providerName == "" {
		providerName = string(c.ProviderID)
	}
	it := connectionItem{ID: c.ID, Label: c.DisplayLabel, Provider: providerName, Initial: initial(providerName),
		Status: statusText[c.Status], StatusClass: "status-" + string(c.Status),
		Created: c.CreatedAt.UTC().Format("2 Jan 2006")}
	if it.Status == "" {
		it.Status = string(c.Status)
	}
	if c.Status == opencalico.StatusError || c.Status == opencalico.StatusReauthRequired {
		it.Detail = c.StatusDetail.Message
	}
	if c.LastSyncedAt != nil {
		it.Detail = strings.TrimSpace(it.Detail + " Last synced " + c.LastSyncedAt.UTC().Format("2 Jan 2006 15:04") + " UTC.")
	}
	return it
}

// showProvider is the form that connects one provider.
func (w *Widget) showProvider(f *flow, status int, id opencalico.ProviderID, p *page) {
	pr, err := w.cfg.Connections.Provider(id)
	if err != nil {
		w.showHome(f, http.StatusNotFound, &page{Error: "This provider is not offered here. Pick one from the list."})
		return
	}
	it := w.providerView(f, pr)
	p.Provider = &it
	if p.Title == "" {
		p.Title = "Connect " + pr.Name
	}
	if it.OAuth {
		// "Connect with …" is answered with a redirect to the provider's consent page.
		p.FormTargets = append(p.FormTargets, it.OAuthOrigin)
	}
	if it.ComingSoon {
		w.render(f, status, "provider", p)
		return
	}
	for _, m := range pr.AuthMetaData {
		if it.Type == "" || m.AuthType != it.Type {
			continue
		}
		p.HelpURL = safeHelpURL(m.HelpURL)
		for _, fd := range m.Fields {
			fi := fieldItem{Name: fd.Name, Label: fd.Label, InputType: "text", Autocomplete: "off", Optional: fd.Optional}
			if fd.Secret {
				fi.InputType = "password"
				fi.Autocomplete = "new-password"
			}
			p.Fields = append(p.Fields, fi)
		}
	}
	w.render(f, status, "provider", p)
}

// safeHelpURL keeps only https links (a catalog entry is ours, but a link is a link).
func safeHelpURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return u.String()
}

// showConsent names the partner and what it will read.
func (w *Widget) showConsent(f *flow, status int, p *page) {
	list, err := w.cfg.Connections.List(f.r.Context(), f.user.ID)
	if err != nil {
		w.internalError(f, err)
		return
	}
	names := map[opencalico.ProviderID]string{}
	for _, pr := range w.cfg.Connections.Catalog() {
		names[pr.ID] = pr.Name
	}
	for _, c := range list {
		p.Connections = append(p.Connections, connectionView(c, names[c.ProviderID]))
	}
	p.Title = "Allow " + f.req.Client.Name + " to read your accounts?"
	p.Scope = scopeText(f.req.Scope)
	w.render(f, status, "consent", p)
}

func scopeText(scope string) []string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if s == "accounts:read" {
			out = append(out,
				"The list of your connected accounts and whether they are up to date",
				"The balances of each connected account",
				"The transaction history of each connected account: trades, deposits, withdrawals and fees",
				"Accounts you connect later, until you withdraw this permission")
		}
	}
	return out
}

// showConsents lists the partners the user gave access to, with a revoke button for each.
func (w *Widget) showConsents(f *flow, status int, p *page) {
	ctx := f.r.Context()
	consents, err := w.cfg.Users.ConsentsForUser(ctx, f.user.ID)
	if err != nil {
		w.internalError(f, err)
		return
	}
	for _, c := range consents {
		name := c.ClientID
		if cl, err := w.cfg.Users.ClientByID(ctx, c.ClientID); err == nil {
			name = cl.Name
		}
		it := consentItem{ID: c.ID, Client: name, Initial: initial(name), Scope: "Read your accounts", Given: formatDay(c.CreatedAt), Active: c.Active()}
		if c.RevokedAt != nil {
			it.Revoked = formatDay(*c.RevokedAt)
		}
		p.Consents = append(p.Consents, it)
	}
	w.render(f, status, "consents", p)
}

func formatDay(t time.Time) string { return t.UTC().Format("2 Jan 2006") }
