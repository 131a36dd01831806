package opencalico

// ProviderID is the lower-case slug of a provider: "coinbase", "binance", "bitcoin", …
type ProviderID string

// ProviderKind says what sort of source a provider is.
type ProviderKind string

// The provider kinds.
const (
	KindExchange   ProviderKind = "exchange"
	KindWallet     ProviderKind = "wallet"
	KindBlockchain ProviderKind = "blockchain"
)

// AuthType is how a connection authenticates (CryptoSourceCredentialAuthType in the API).
type AuthType string

// The auth types.
const (
	AuthAPIKey AuthType = "api_key"
	AuthWallet AuthType = "wallet"
	AuthOAuth2 AuthType = "oauth2"
)

// Valid reports whether t is one of the defined auth types.
func (t AuthType) Valid() bool {
	switch t {
	case AuthAPIKey, AuthWallet, AuthOAuth2:
		return true
	}
	return false
}

// AuthField is one field a user fills in to connect (a key, a secret, an address).
type AuthField struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Secret   bool   `json:"secret"`
	Optional bool   `json:"optional,omitempty"`
}

// AuthMetaData tells, for one auth type of a provider, what the user must provide and where to
// make it (for example the provider's page for creating a read-only API key).
type AuthMetaData struct {
	AuthType AuthType    `json:"auth_type"`
	Fields   []AuthField `json:"fields"`
	HelpURL  string      `json:"help_url,omitempty"`
}

// Provider is a catalog entry: an exchange, custodian or blockchain we read from.
type Provider struct {
	ID           ProviderID
	Name         string
	Kind         ProviderKind
	LogoURL      string
	AuthTypes    []AuthType
	Chains       []string
	AuthMetaData []AuthMetaData
}

// Supports reports whether the provider accepts connections of auth type t.
func (p Provider) Supports(t AuthType) bool {
	for _, a := range p.AuthTypes {
		if a == t {
			return true
		}
	}
	return false
}

// SecretFields returns the names of the fields of auth type t that are secret and so must be
// sealed before storage.
func (p Provider) SecretFields(t AuthType) []string {
	var names []string
	for _, m := range p.AuthMetaData {
		if m.AuthType != t {
			continue
		}
		for _, f := range m.Fields {
			if f.Secret {
				names = append(names, f.Name)
			}
		}
	}
	return names
}
