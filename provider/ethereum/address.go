package ethereum

import (
	"encoding/hex"
	"strings"

	"github.com/opencalico/opencalico"
	"golang.org/x/crypto/sha3"
)

// AddressLength is the length of an EVM address in bytes.
const AddressLength = 20

func invalidAddress(format string, args ...any) error {
	return opencalico.Errorf(opencalico.EInvalidAddress, format, args...)
}

// ValidateAddress checks an EVM address: "0x" and 40 hex digits. All-lower and all-upper case
// carry no checksum and are accepted; mixed case is an EIP-55 checksum and must match, since
// a mistyped character would otherwise name somebody else's account. It returns the EIP-55
// checksummed form (the canonical spelling), or an error with code EInvalidAddress.
func ValidateAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidAddress("The address is empty.")
	}
	if len(s) < 2 || (s[:2] != "0x" && s[:2] != "0X") {
		return "", invalidAddress("Not an EVM address: it must start with 0x.")
	}
	digits := s[2:]
	if len(digits) != 2*AddressLength {
		return "", invalidAddress("Not an EVM address: it must hold 40 hex digits after 0x, this one %d.", len(digits))
	}
	if _, err := hex.DecodeString(digits); err != nil {
		return "", invalidAddress("Not an EVM address: it holds a character that is not a hex digit.")
	}
	canonical := ChecksumAddress(digits)
	lower, upper := strings.ToLower(digits), strings.ToUpper(digits)
	if digits != lower && digits != upper && "0x"+digits != canonical {
		return "", invalidAddress("The address fails its EIP-55 checksum (the case of its letters): check it for a typo.")
	}
	return canonical, nil
}

// ChecksumAddress spells 40 hex digits (with or without 0x) in EIP-55 mixed case: a letter is
// upper case when the matching nibble of Keccak-256(lower-case hex) is 8 or more.
func ChecksumAddress(address string) string {
	lower := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(address, "0x"), "0X"))
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	out := make([]byte, 2, 2+len(lower))
	out[0], out[1] = '0', 'x'
	for i := 0; i < len(lower); i++ {
		c := lower[i]
		nibble := sum[i/2] >> 4
		if i%2 == 1 {
			nibble = sum[i/2] & 0x0f
		}
		if c >= 'a' && c <= 'f' && nibble >= 8 {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}
