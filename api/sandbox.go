package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/oauth"
)

// Sandbox is what the sandbox routes need. They are mounted only when the server runs with
// --sandbox, never in production: POST /sandbox/users hands out tokens without the user's
// approval.
type Sandbox struct {
	// Clients finds the calling client (*store.Store).
	Clients interface {
		ClientByID(ctx context.Context, id string) (*opencalico.Client, error)
	}
	// Users creates sandbox users and finds them again by email (*store.Store).
	Users interface {
		CreateUser(ctx context.Context, u *opencalico.User) error
		UserByEmail(ctx context.Context, email string) (*opencalico.User, error)
	}
	// IssueTokens records the user's consent to the client and issues tokens for it
	// (oauth.Server.IssueTokensForUser).
	IssueTokens func(ctx context.Context, client *opencalico.Client, userID string) (access, refresh string, expiresIn int, err error)
	// Credentials lists the simulators' ready-made credentials, by provider id.
	Credentials func() map[opencalico.ProviderID]SandboxProviderCredentials
}

// SandboxCredential is one ready-made connection object for POST /accounts/v2/providers.
// Case, for bad ones, names the failure it provokes.
type SandboxCredential struct {
	Label      string            `json:"label"`
	Case       string            `json:"case,omitempty"`
	Connection map[string]string `json:"connection"`
}

// SandboxProviderCredentials are one provider's credentials: ones that connect and ones
// that fail.
type SandboxProviderCredentials struct {
	Good []SandboxCredential `json:"good"`
	Bad  []SandboxCredential `json:"bad"`
}

// MountSandbox adds POST /sandbox/users and GET /sandbox/credentials.
func (s *Server) MountSandbox(d Sandbox) {
	h := &sandboxHandlers{s: s, d: d}
	s.Handle("POST /sandbox/users", http.HandlerFunc(h.createUser))
	s.Handle("GET /sandbox/credentials", http.HandlerFunc(h.credentials))
	s.Handle("GET /sandbox/callback", http.HandlerFunc(h.callback))
}

type sandboxHandlers struct {
	s *Server
	d Sandbox
}

// sandboxUserRequest is SandboxUserRequest.
type sandboxUserRequest struct {
	Email string `json:"email"`
}

// errClientAuth is the answer to a missing or wrong client authentication; it does not say
// which of the id and the secret was wrong.
var errClientAuth = opencalico.Errorf(opencalico.EUnauthorized,
	"Authenticate as a confidential client with HTTP Basic client_id:client_secret (the sandbox client printed at start).")

// authenticateClient checks HTTP Basic client_id:client_secret (RFC 6749 §2.3.1: each
// form-encoded before the Basic encoding) against a confidential client.
func (h *sandboxHandlers) authenticateClient(r *http.Request) (*opencalico.Client, error) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return nil, errClientAuth
	}
	var e1, e2 error
	id, e1 = url.QueryUnescape(id)
	secret, e2 = url.QueryUnescape(secret)
	if e1 != nil || e2 != nil || id == "" || secret == "" {
		return nil, errClientAuth
	}
	client, err := h.d.Clients.ClientByID(r.Context(), id)
	if opencalico.ErrorCodeOf(err) == opencalico.ENotFound {
		return nil, errClientAuth
	} else if err != nil {
		return nil, err
	}
	if client.Public || !oauth.SecretMatches(client.SecretHash, secret) {
		return nil, errClientAuth
	}
	return client, nil
}

// writeClientError writes err, asking for Basic client authentication on a 401 (writeError
// asks for a bearer token, which is not what these routes take).
func (h *sandboxHandlers) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if opencalico.ErrorCodeOf(err) == opencalico.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="opencalico sandbox", charset="UTF-8"`)
		writeJSON(w, http.StatusUnauthorized, errorResponse{Errors: []ErrorItem{{Cause: string(opencalico.EUnauthorized), Message: opencalico.ErrorMessage(err)}}})
		return
	}
	h.s.writeError(w, r, err)
}

func (h *sandboxHandlers) createUser(w http.ResponseWriter, r *http.Request) {
	client, err := h.authenticateClient(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var in sandboxUserRequest
	if r.ContentLength != 0 {
		if err := h.s.decodeJSON(r, &in); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	status := http.StatusCreated
	user, err := h.sandboxUser(r.Context(), strings.TrimSpace(in.Email))
	if errors.Is(err, errUserExists) {
		status, err = http.StatusOK, nil
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	access, refresh, expiresIn, err := h.d.IssueTokens(r.Context(), client, user.ID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeData(w, status, map[string]any{"user_id": user.ID, "access_token": access, "refresh_token": refresh, "expires_in": expiresIn}, nil, nil)
}

// errUserExists tells createUser that the sandbox user was found rather than made.
var errUserExists = opencalico.Errorf(opencalico.EAlreadyConnected, "sandbox user exists")

// sandboxUser makes the user with the email, or a generated one when it is empty. An email
// that already names a sandbox user (one without a password) gives that user again, with
// errUserExists, so that a script can be run twice; a user who signed up in the widget is
// never handed out.
func (h *sandboxHandlers) sandboxUser(ctx context.Context, email string) (*opencalico.User, error) {
	if email == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		email = "sandbox-" + hex.EncodeToString(b[:]) + "@sandbox.opencalico.invalid"
	} else if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return nil, opencalico.Errorf(opencalico.EBadRequest, "email must be a plain email address such as alice@example.com.")
	}
	u := &opencalico.User{Email: email}
	err := h.d.Users.CreateUser(ctx, u)
	if err == nil {
		return u, nil
	}
	if opencalico.ErrorCodeOf(err) != opencalico.EBadRequest {
		return nil, err
	}
	existing, lookupErr := h.d.Users.UserByEmail(ctx, email)
	if lookupErr != nil {
		return nil, err
	}
	if existing.PasswordHash != "" {
		return nil, opencalico.Errorf(opencalico.EBadRequest, "This email belongs to a user who signed up in the widget; choose another one, or leave email out.")
	}
	return existing, errUserExists
}

func (h *sandboxHandlers) credentials(w http.ResponseWriter, _ *http.Request) {
	out := map[opencalico.ProviderID]SandboxProviderCredentials{}
	if h.d.Credentials != nil {
		out = h.d.Credentials()
	}
	writeData(w, http.StatusOK, out, nil, nil)
}

// callback is the sandbox client's redirect URI: it shows what the authorization returned
// (code and state, or error), for exchanging the code at POST /oauth/token by hand.
func (h *sandboxHandlers) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := map[string]string{}
	for _, k := range []string{"code", "state", "iss", "error", "error_description"} {
		if v := q.Get(k); v != "" {
			out[k] = v
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if out["code"] == "" && out["error"] == "" {
		h.s.writeError(w, r, opencalico.Errorf(opencalico.EBadRequest, "This is the sandbox client's redirect URI: it expects code and state, or error, from /oauth/authorize."))
		return
	}
	writeData(w, http.StatusOK, out, nil, nil)
}
