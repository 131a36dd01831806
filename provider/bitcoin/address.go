package bitcoin

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/big"
	"strings"

	"github.com/opencalico/opencalico"
	"golang.org/x/crypto/ripemd160" //lint:ignore SA1019 Bitcoin's hash160 is RIPEMD-160 by consensus; there is no substitute.
)

// Version bytes of base58check addresses (mainnet and testnet).
const (
	versionP2PKH        = 0x00
	versionP2SH         = 0x05
	versionTestnetP2PKH = 0x6f
	versionTestnetP2SH  = 0xc4
)

// The bech32 checksum constants: BIP173 for witness v0, BIP350 (bech32m) for v1 and above.
const (
	bech32Const  = 1
	bech32mConst = 0x2bc830a3
)

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func invalidAddress(format string, args ...any) error {
	return opencalico.Errorf(opencalico.EInvalidAddress, format, args...)
}

// ValidateAddress checks a mainnet Bitcoin address by its checksum and network: legacy P2PKH
// (1…), P2SH (3…), bech32 witness v0 (bc1q…) and bech32m witness v1+ (bc1p…). It returns the
// address in its canonical form (bech32 in lower case) or an error with code EInvalidAddress;
// testnet and regtest addresses are refused with a message that says so.
func ValidateAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidAddress("The Bitcoin address is empty.")
	}
	if i := strings.LastIndexByte(s, '1'); i > 0 {
		if hrp := strings.ToLower(s[:i]); hrp == "bc" || hrp == "tb" || hrp == "bcrt" {
			return validateSegwit(s)
		}
	}
	return validateBase58(s)
}

func validateBase58(s string) (string, error) {
	payload, err := base58CheckDecode(s)
	if err != nil {
		return "", invalidAddress("Not a valid Bitcoin address: %v.", err)
	}
	if len(payload) != 21 {
		return "", invalidAddress("Not a valid Bitcoin address: a base58 address holds 21 bytes, this one %d.", len(payload))
	}
	switch payload[0] {
	case versionP2PKH, versionP2SH:
		return s, nil
	case versionTestnetP2PKH, versionTestnetP2SH:
		return "", invalidAddress("This is a Bitcoin testnet address; only mainnet addresses are supported.")
	}
	return "", invalidAddress("Not a Bitcoin address: unknown version byte 0x%02x.", payload[0])
}

func validateSegwit(s string) (string, error) {
	hrp, version, program, err := decodeSegwit(s)
	if err != nil {
		return "", invalidAddress("Not a valid Bitcoin address: %v.", err)
	}
	if hrp != "bc" {
		return "", invalidAddress("This is a Bitcoin testnet or regtest address; only mainnet addresses are supported.")
	}
	return encodeSegwit(hrp, version, program), nil
}

// base58CheckDecode decodes s and checks its 4-byte double-SHA256 checksum.
func base58CheckDecode(s string) ([]byte, error) {
	n := new(big.Int)
	radix := big.NewInt(58)
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, errors.New("a character outside the base58 alphabet")
		}
		n.Mul(n, radix)
		n.Add(n, big.NewInt(int64(d)))
	}
	// Each leading '1' stands for a leading zero byte, which the number drops.
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	raw := append(make([]byte, zeros), n.Bytes()...)
	if len(raw) < 5 {
		return nil, errors.New("too short")
	}
	body, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	if want := doubleSHA256(body); !bytes.Equal(want[:4], sum) {
		return nil, errors.New("bad checksum")
	}
	return body, nil
}

func base58CheckEncode(body []byte) string {
	sum := doubleSHA256(body)
	raw := append(append([]byte(nil), body...), sum[:4]...)
	n := new(big.Int).SetBytes(raw)
	radix, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, b := range raw {
		if b != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func doubleSHA256(b []byte) [32]byte {
	first := sha256.Sum256(b)
	return sha256.Sum256(first[:])
}

func hash160(b []byte) []byte {
	sha := sha256.Sum256(b)
	h := ripemd160.New()
	h.Write(sha[:])
	return h.Sum(nil)
}

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func hrpExpand(hrp string) []byte {
	out := make([]byte, 0, 2*len(hrp)+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// decodeSegwit decodes a segwit address per BIP173 and BIP350: the checksum constant must
// match the witness version (bech32 for v0, bech32m for v1+), and the program's length the
// version's rules.
func decodeSegwit(s string) (hrp string, version byte, program []byte, err error) {
	if len(s) > 90 {
		return "", 0, nil, errors.New("longer than 90 characters")
	}
	lower, upper := strings.ToLower(s), strings.ToUpper(s)
	if s != lower && s != upper {
		return "", 0, nil, errors.New("mixed case")
	}
	s = lower
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "", 0, nil, errors.New("a character out of range")
		}
	}
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || sep+7 > len(s) {
		return "", 0, nil, errors.New("misplaced separator")
	}
	hrp = s[:sep]
	data := make([]byte, 0, len(s)-sep-1)
	for i := sep + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", 0, nil, errors.New("a character outside the bech32 alphabet")
		}
		data = append(data, byte(d))
	}
	constant := bech32Polymod(append(hrpExpand(hrp), data...))
	if constant != bech32Const && constant != bech32mConst {
		return "", 0, nil, errors.New("bad checksum")
	}
	data = data[:len(data)-6]
	if len(data) < 1 {
		return "", 0, nil, errors.New("no witness version")
	}
	version = data[0]
	if version > 16 {
		return "", 0, nil, errors.New("witness version above 16")
	}
	if version == 0 && constant != bech32Const {
		return "", 0, nil, errors.New("a witness v0 address must use the bech32 checksum, not bech32m")
	}
	if version > 0 && constant != bech32mConst {
		return "", 0, nil, errors.New("a witness v1+ address must use the bech32m checksum, not bech32")
	}
	program, ok := convertBits(data[1:], 5, 8, false)
	if !ok {
		return "", 0, nil, errors.New("bad padding")
	}
	if len(program) < 2 || len(program) > 40 {
		return "", 0, nil, errors.New("witness program of a wrong length")
	}
	if version == 0 && len(program) != 20 && len(program) != 32 {
		return "", 0, nil, errors.New("a witness v0 program is 20 or 32 bytes")
	}
	return hrp, version, program, nil
}

func encodeSegwit(hrp string, version byte, program []byte) string {
	conv, _ := convertBits(program, 8, 5, true)
	data := append([]byte{version}, conv...)
	constant := uint32(bech32Const)
	if version > 0 {
		constant = bech32mConst
	}
	values := append(hrpExpand(hrp), data...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(values) ^ constant
	var b strings.Builder
	b.WriteString(hrp)
	b.WriteByte('1')
	for _, d := range data {
		b.WriteByte(bech32Charset[d])
	}
	for i := 0; i < 6; i++ {
		b.WriteByte(bech32Charset[(mod>>(5*(5-i)))&31])
	}
	return b.String()
}

// convertBits regroups a bit stream from groups of from bits to groups of to bits. Without
// pad, left-over bits must be fewer than from and all zero (BIP173).
func convertBits(data []byte, from, to uint, pad bool) ([]byte, bool) {
	acc, bits := uint32(0), uint(0)
	maxv := uint32(1)<<to - 1
	var out []byte
	for _, v := range data {
		if uint32(v)>>from != 0 {
			return nil, false
		}
		acc = acc<<from | uint32(v)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, false
	}
	return out, true
}

// Address kinds a derived key is paid to, by the extended key's version (SLIP-132).
type scriptKind int

const (
	kindP2PKH      scriptKind = iota // xpub, BIP44
	kindP2SHP2WPKH                   // ypub, BIP49
	kindP2WPKH                       // zpub, BIP84
)

// addressOf returns the mainnet address paying to a compressed public key.
func addressOf(kind scriptKind, pubkey []byte) string {
	h := hash160(pubkey)
	switch kind {
	case kindP2SHP2WPKH:
		redeem := append([]byte{0x00, 0x14}, h...)
		return base58CheckEncode(append([]byte{versionP2SH}, hash160(redeem)...))
	case kindP2WPKH:
		return encodeSegwit("bc", 0, h)
	}
	return base58CheckEncode(append([]byte{versionP2PKH}, h...))
}
