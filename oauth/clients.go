package oauth

import (
	"net/url"
	"strings"

	"github.com/opencalico/opencalico"
)

// NewClient makes a partner client to store. A confidential client (public false) gets a
// secret, returned here once: only its hash is kept in the client. Redirect URIs must be
// absolute, without a fragment (RFC 6749 §3.1.2), and https unless they point at the loopback
// interface (development) or use a private scheme (native apps, RFC 8252 §7.1).
func NewClient(name string, redirectURIs []string, public, allowPlainPKCE bool) (client *opencalico.Client, secret string, err error) {
	if strings.TrimSpace(name) == "" {
		return nil, "", opencalico.Errorf(opencalico.EBadRequest, "a client needs a name")
	}
	if len(redirectURIs) == 0 {
		return nil, "", opencalico.Errorf(opencalico.EBadRequest, "a client needs at least one redirect URI")
	}
	for _, raw := range redirectURIs {
		if err := checkRedirectURI(raw); err != nil {
			return nil, "", err
		}
	}
	client = &opencalico.Client{ID: opencalico.NewID("cli"), Name: name, RedirectURIs: redirectURIs,
		Public: public, AllowPlainPKCE: allowPlainPKCE}
	if !public {
		secret = newSecret("ocs_")
		client.SecretHash = hashSecret(secret)
	}
	return client, secret, nil
}

func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return opencalico.Errorf(opencalico.EBadRequest, "redirect URI %q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return opencalico.Errorf(opencalico.EBadRequest, "redirect URI %q must not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if host != "localhost" && host != "127.0.0.1" && host != "::1" {
			return opencalico.Errorf(opencalico.EBadRequest, "redirect URI %q must use https (http is for localhost only)", raw)
		}
	case "javascript", "data", "file", "vbscript":
		return opencalico.Errorf(opencalico.EBadRequest, "redirect URI %q has a forbidden scheme", raw)
	default:
		// A private-use scheme of a native app (com.example.app:/callback).
		if !strings.Contains(u.Scheme, ".") {
			return opencalico.Errorf(opencalico.EBadRequest, "redirect URI %q: a private scheme must be a reverse domain name", raw)
		}
	}
	return nil
}
