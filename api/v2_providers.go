package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/connections"
)

// Connections adds and removes connections (the connections service): the same code path as
// the Connect widget, so that the API and the widget check credentials alike.
type Connections interface {
	Add(ctx context.Context, req connections.AddRequest) (*opencalico.Connection, error)
	Remove(ctx context.Context, userID, connectionID string) error
	// StartOAuth and CompleteOAuth connect through the provider's own consent (oauth2).
	StartOAuth(ctx context.Context, req connections.OAuthStart) (string, error)
	CompleteOAuth(ctx context.Context, req connections.OAuthCompletion) (*connections.OAuthResult, error)
}

// addProvidersRequest is AddProvidersRequest. The connection object carries the fields of
// every connection type; its `type` says which apply.
type addProvidersRequest struct {
	ProviderID   string `json:"provider_id"`
	DisplayLabel string `json:"display_label"`
	Connection   *struct {
		Type        string `json:"type"`
		APIKey      string `json:"api_key"`
		SecretKey   string `json:"secret_key"`
		Passphrase  string `json:"passphrase"`
		Address     string `json:"address"`
		Chain       string `json:"chain"`
		RedirectURI string `json:"redirect_uri"`
	} `json:"connection"`
}

func (h *v2Handlers) addProviderFor(w http.ResponseWriter, r *http.Request) error {
	p, err := principal(r)
	if err != nil {
		return err
	}
	var in addProvidersRequest
	if err := h.s.decodeJSON(r, &in); err != nil {
		return err
	}
	switch {
	case in.ProviderID == "":
		return opencalico.Errorf(opencalico.EBadRequest, "provider_id is required.")
	case in.Connection == nil:
		return opencalico.Errorf(opencalico.EBadRequest, "connection is required: an object with a type (api_key, wallet or oauth2).")
	case in.Connection.Type == "":
		return opencalico.Errorf(opencalico.EBadRequest, "connection.type is required: api_key, wallet or oauth2.")
	}
	if !opencalico.AuthType(in.Connection.Type).Valid() {
		return opencalico.Errorf(opencalico.EUnsupportedConnectionType, "connection.type %q is not one of api_key, wallet, oauth2.", opencalico.Excerpt(in.Connection.Type, 20))
	}
	if opencalico.AuthType(in.Connection.Type) == opencalico.AuthOAuth2 {
		return h.startOAuth(w, r, p, in.ProviderID, in.DisplayLabel, in.Connection.RedirectURI)
	}
	fields := map[string]string{}
	for name, v := range map[string]string{connections.FieldAPIKey: in.Connection.APIKey, connections.FieldSecretKey: in.Connection.SecretKey,
		connections.FieldPassphrase: in.Connection.Passphrase, connections.FieldAddress: in.Connection.Address} {
		if v != "" {
			fields[name] = v
		}
	}
	c, err := h.d.Connections.Add(r.Context(), connections.AddRequest{UserID: p.UserID, ProviderID: opencalico.ProviderID(in.ProviderID),
		Type: opencalico.AuthType(in.Connection.Type), DisplayLabel: in.DisplayLabel, Fields: fields, Chain: in.Connection.Chain})
	if err != nil {
		return err
	}
	view := connectionOf(c, h.catalogEntry(c.ProviderID))
	writeData(w, http.StatusCreated, map[string]any{"added": true, "redirect_url": nil, "connection": view}, nil, nil)
	return nil
}

// removeProvidersFor removes the named connections, or every connection of the named
// providers, with their credentials, positions and transactions. Ids that are not the
// caller's are reported in errors[] as not found, and nothing of theirs is touched.
func (h *v2Handlers) removeProvidersFor(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := principal(r)
	if err != nil {
		return err
	}
	var in struct {
		ConnectionIDs []string `json:"connection_ids"`
		ProviderIDs   []string `json:"provider_ids"`
	}
	if err := h.s.decodeJSON(r, &in); err != nil {
		return err
	}
	if (len(in.ConnectionIDs) == 0) == (len(in.ProviderIDs) == 0) {
		return opencalico.Errorf(opencalico.EBadRequest, "Send either connection_ids or provider_ids, not both and not neither.")
	}
	conns, err := h.d.Store.ListConnections(ctx, p.UserID)
	if err != nil {
		return err
	}
	var targets []string
	var errs []ErrorItem
	for _, id := range in.ConnectionIDs {
		if slices.ContainsFunc(conns, func(c *opencalico.Connection) bool { return c.ID == id }) {
			targets = append(targets, id)
		} else {
			errs = append(errs, ErrorItem{Cause: string(opencalico.ENotFound), Message: "Connection " + opencalico.Excerpt(id, 64) + " was not found."})
		}
	}
	for _, c := range conns {
		if slices.Contains(in.ProviderIDs, string(c.ProviderID)) {
			targets = append(targets, c.ID)
		}
	}
	removed := []string{}
	for _, id := range targets {
		if err := h.d.Connections.Remove(ctx, p.UserID, id); err != nil {
			return err
		}
		removed = append(removed, id)
	}
	writeData(w, http.StatusOK, map[string]any{"removed": removed}, errs, nil)
	return nil
}
