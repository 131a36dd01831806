package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
	"github.com/opencalico/opencalico/oauth"
)

// Connecting through a provider's OAuth consent, for a partner:
//
//  1. POST /accounts/v2/providers with {"type": "oauth2", "redirect_uri": …} answers the
//     provider's consent URL (added: false). redirect_uri must be one of the partner's
//     registered redirect URIs (it may be left out when there is exactly one): the browser is
//     sent there with the code, so it must be a place the partner controls.
//  2. The provider sends the browser back to opencalico's return page (/connect/oauth/return,
//     the redirect URI registered with the provider), which forwards code and state (or
//     error) to that redirect_uri.
//  3. The partner calls POST /accounts/v2/oauth/callback/{provider_id}?state=…&code=… with the
//     user's access token, which makes the connection: the state must have been issued to
//     this user, partner and provider, and is single use.

// startOAuth is the oauth2 branch of POST /accounts/v2/providers.
func (h *v2Handlers) startOAuth(w http.ResponseWriter, r *http.Request, p *oauth.Principal, providerID, label, redirectURI string) error {
	ctx := r.Context()
	if h.d.Store == nil || p.ClientID == "" {
		return opencalico.Errorf(opencalico.EUnsupportedConnectionType, "Connecting through the provider's consent needs a partner's access token.")
	}
	client, err := h.d.Store.ClientByID(ctx, p.ClientID)
	if err != nil {
		if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
			return opencalico.Errorf(opencalico.EUnauthorized, "The partner of this access token no longer exists.")
		}
		return err
	}
	redirectURI = strings.TrimSpace(redirectURI)
	switch {
	case redirectURI == "" && len(client.RedirectURIs) == 1:
		redirectURI = client.RedirectURIs[0]
	case redirectURI == "":
		return opencalico.Errorf(opencalico.EBadRequest,
			"connection.redirect_uri is required: name the registered redirect URI the user comes back to after the provider's consent.")
	case !slices.Contains(client.RedirectURIs, redirectURI):
		return opencalico.Errorf(opencalico.EBadRequest,
			"connection.redirect_uri is not one of this partner's registered redirect URIs.")
	}
	consentURL, err := h.d.Connections.StartOAuth(ctx, connections.OAuthStart{UserID: p.UserID, ClientID: p.ClientID,
		ProviderID: opencalico.ProviderID(providerID), DisplayLabel: label, ReturnURL: redirectURI})
	if err != nil {
		return err
	}
	writeData(w, http.StatusCreated, map[string]any{"added": false, "redirect_url": consentURL, "connection": nil}, nil, nil)
	return nil
}

// callback is POST /accounts/v2/oauth/callback/{provider_id}?state=…&code=….
func (h *v2Handlers) callbackFor(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	if h.d.Connections == nil {
		return opencalico.Errorf(opencalico.ENotFound, "Connections are not served here.")
	}
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	switch {
	case state == "":
		return opencalico.Errorf(opencalico.EInvalidState, "state is required: the state that came back from the provider's consent.")
	case code == "":
		if e := q.Get("error"); e != "" {
			return opencalico.Errorf(opencalico.EBadRequest, "The provider's consent did not give a code (%s): the user did not authorize the connection.", safeOAuthWord(e))
		}
		return opencalico.Errorf(opencalico.EBadRequest, "code is required: the authorization code that came back from the provider's consent.")
	}
	res, err := h.d.Connections.CompleteOAuth(r.Context(), connections.OAuthCompletion{UserID: p.UserID, ClientID: p.ClientID,
		ProviderID: opencalico.ProviderID(r.PathValue("provider_id")), State: state, Code: code})
	if err != nil {
		return err
	}
	var redirect any
	if res.ReturnURL != "" {
		if u, err := url.Parse(res.ReturnURL); err == nil && u.IsAbs() {
			redirect = res.ReturnURL
		}
	}
	view := connectionOf(res.Connection, h.catalogEntry(res.Connection.ProviderID))
	writeData(w, http.StatusCreated, map[string]any{"added": true, "redirect_url": redirect, "connection": view}, nil, nil)
	return nil
}

// safeOAuthWord returns an OAuth error code if it looks like one (a short snake_case word).
func safeOAuthWord(s string) string {
	if s == "" || len(s) > 40 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "unknown error"
	}
	return s
}
