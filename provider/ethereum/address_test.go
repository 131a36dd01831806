package ethereum

import (
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
)

// The test vectors of EIP-55.
var eip55Vectors = []string{
	// All caps.
	"0x52908400098527886E0F7030069857D2E4169EE7",
	"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	// All lower.
	"0xde709f2102306220921060314715629080e2fb77",
	"0x27b1fdb04752bbc536007a920d24acb045561c26",
	// Normal.
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

func TestEIP55Vectors(t *testing.T) {
	for _, v := range eip55Vectors {
		got, err := ValidateAddress(v)
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		// The canonical form is the checksum of the same address; the mixed-case vectors
		// are their own checksum.
		if !strings.EqualFold(got, v) || got != ChecksumAddress(v) {
			t.Errorf("%s: canonical %s", v, got)
		}
		if mixed := v[2:] != strings.ToLower(v[2:]) && v[2:] != strings.ToUpper(v[2:]); mixed && got != v {
			t.Errorf("%s: checksum %s", v, got)
		}
	}
}

func TestEIP55FlippedCaseIsInvalid(t *testing.T) {
	for _, v := range eip55Vectors[4:] {
		// Flip the case of each letter in turn: every flip must fail the checksum.
		for i := 2; i < len(v); i++ {
			c := v[i]
			var flipped byte
			switch {
			case c >= 'a' && c <= 'f':
				flipped = c - 32
			case c >= 'A' && c <= 'F':
				flipped = c + 32
			default:
				continue
			}
			bad := v[:i] + string(flipped) + v[i+1:]
			if _, err := ValidateAddress(bad); opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
				t.Errorf("%s: got %v, want invalid_address", bad, err)
			}
		}
	}
}

func TestValidateAddressRejects(t *testing.T) {
	for name, s := range map[string]string{
		"empty":      "",
		"no 0x":      "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"short":      "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
		"long":       "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0",
		"not hex":    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
		"bitcoin":    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
		"only 0x":    "0x",
		"spaces in":  "0x5aAeb6053F3E94C9 9A09f33669435E7Ef1BeAed",
		"wrong case": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	} {
		_, err := ValidateAddress(s)
		var e *opencalico.Error
		if opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress || !errorAs(err, &e) || e.Message == "" {
			t.Errorf("%s (%q): got %v, want invalid_address", name, s, err)
		}
	}
	// Surrounding spaces are forgiven, as when pasted.
	if got, err := ValidateAddress("  0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed\n"); err != nil || got != "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" {
		t.Errorf("got %q %v", got, err)
	}
}
