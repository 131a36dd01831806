package api

import (
	"strings"
)

// The minor versions of the API a client may ask for with the Calico-Version header.
const (
	Version20 = "2.0"
	Version21 = "2.1"
	// VersionLatest answers requests that name no version.
	VersionLatest = Version21
)

func joinComma(s []string) string { return strings.Join(s, ", ") }

func trimSpace(s string) string { return strings.TrimSpace(s) }
