package solana

import (
	"errors"
	"strings"

	"github.com/opencalico/opencalico"
)

// PublicKeySize is the length of a Solana public key (an ed25519 point, or a program-derived
// address of the same size).
const PublicKeySize = 32

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Digits maps a byte to its base58 value, or -1 outside the alphabet.
var base58Digits = func() [256]int8 {
	var d [256]int8
	for i := range d {
		d[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		d[base58Alphabet[i]] = int8(i)
	}
	return d
}()

// base58Decode decodes the Bitcoin-alphabet base58 that Solana uses for keys and
// signatures (no checksum). Each leading '1' is a leading zero byte.
func base58Decode(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// Big-endian base-256 digits of the number, grown as needed: at most len(s)·log(58)/log(256)
	// bytes, about 0.733 per character.
	num := make([]byte, 0, len(s)*733/1000+1)
	for i := zeros; i < len(s); i++ {
		d := base58Digits[s[i]]
		if d < 0 {
			return nil, errors.New("a character outside the base58 alphabet")
		}
		carry := int(d)
		for j := len(num) - 1; j >= 0; j-- {
			carry += int(num[j]) * 58
			num[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append([]byte{byte(carry)}, num...)
			carry >>= 8
		}
	}
	return append(make([]byte, zeros), num...), nil
}

// ValidateAddress checks a Solana address: base58 text decoding to exactly 32 bytes. It
// returns the address unchanged (base58 has one spelling per key) or an error with code
// EInvalidAddress. Whether the key is on the ed25519 curve is not checked: program-derived
// addresses are off the curve and still own tokens.
func ValidateAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", opencalico.Errorf(opencalico.EInvalidAddress, "The Solana address is empty.")
	}
	if len(s) > 44 {
		return "", opencalico.Errorf(opencalico.EInvalidAddress, "Not a Solana address: longer than 44 characters.")
	}
	raw, err := base58Decode(s)
	if err != nil {
		return "", opencalico.Errorf(opencalico.EInvalidAddress, "Not a Solana address: %v.", err)
	}
	if len(raw) != PublicKeySize {
		return "", opencalico.Errorf(opencalico.EInvalidAddress, "Not a Solana address: it holds %d bytes, a Solana public key 32.", len(raw))
	}
	return s, nil
}
