package esplora

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"strings"

	//lint:ignore SA1019 Bitcoin's hash160 is RIPEMD-160 by consensus; there is no substitute.
	"golang.org/x/crypto/ripemd160"
)

// This file derives keys the way a wallet holding the seed does: BIP32 private derivation
// (child k = IL + k mod n) and public keys as k·G in affine coordinates from a table of
// doublings of G. The adapter derives the same addresses from the xpub alone, by public
// derivation on Jacobian points: two methods that agree only if both are right.

var (
	secpP, _  = new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)
	secpN, _  = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
	secpGx, _ = new(big.Int).SetString("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", 16)
	secpGy, _ = new(big.Int).SetString("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8", 16)
)

type affinePoint struct {
	x, y *big.Int // nil x: the point at infinity
}

func (p affinePoint) plus(q affinePoint) affinePoint {
	if p.x == nil {
		return q
	}
	if q.x == nil {
		return p
	}
	var slope *big.Int
	if p.x.Cmp(q.x) == 0 {
		if new(big.Int).Add(p.y, q.y).Mod(new(big.Int).Add(p.y, q.y), secpP).Sign() == 0 {
			return affinePoint{}
		}
		// Tangent: 3x² / 2y.
		num := new(big.Int).Mul(p.x, p.x)
		num.Mul(num, big.NewInt(3))
		den := new(big.Int).Lsh(p.y, 1)
		slope = num.Mul(num, den.ModInverse(den.Mod(den, secpP), secpP))
	} else {
		num := new(big.Int).Sub(q.y, p.y)
		den := new(big.Int).Sub(q.x, p.x)
		den.Mod(den, secpP)
		slope = num.Mul(num, den.ModInverse(den, secpP))
	}
	slope.Mod(slope, secpP)
	x := new(big.Int).Mul(slope, slope)
	x.Sub(x, p.x).Sub(x, q.x).Mod(x, secpP)
	y := new(big.Int).Sub(p.x, x)
	y.Mul(y, slope).Sub(y, p.y).Mod(y, secpP)
	return affinePoint{x, y}
}

// doublings[i] = 2^i·G, computed once.
var doublings = func() []affinePoint {
	out := make([]affinePoint, 256)
	out[0] = affinePoint{secpGx, secpGy}
	for i := 1; i < 256; i++ {
		out[i] = out[i-1].plus(out[i-1])
	}
	return out
}()

func pointOf(k *big.Int) affinePoint {
	var acc affinePoint
	for i := 0; i < k.BitLen(); i++ {
		if k.Bit(i) == 1 {
			acc = acc.plus(doublings[i])
		}
	}
	return acc
}

func serP(p affinePoint) []byte {
	out := make([]byte, 33)
	out[0] = 2 + byte(p.y.Bit(0))
	p.x.FillBytes(out[1:])
	return out
}

type privKey struct {
	k         *big.Int
	chainCode []byte
	depth     byte
	parentFP  []byte
	childNum  uint32
}

func masterKey(seed []byte) privKey {
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	return privKey{k: new(big.Int).SetBytes(sum[:32]), chainCode: sum[32:], parentFP: make([]byte, 4)}
}

func (p privKey) pub() []byte { return serP(pointOf(p.k)) }

// child is CKDpriv; i ≥ 2³¹ is hardened. (The chance of an invalid child, 2⁻¹²⁷, is
// ignored: generation would simply use that key.)
func (p privKey) child(i uint32) privKey {
	mac := hmac.New(sha512.New, p.chainCode)
	if i >= 1<<31 {
		mac.Write([]byte{0})
		mac.Write(p.k.FillBytes(make([]byte, 32)))
	} else {
		mac.Write(p.pub())
	}
	mac.Write(binary.BigEndian.AppendUint32(nil, i))
	sum := mac.Sum(nil)
	k := new(big.Int).SetBytes(sum[:32])
	k.Add(k, p.k).Mod(k, secpN)
	return privKey{k: k, chainCode: sum[32:], depth: p.depth + 1, parentFP: hash160(p.pub())[:4], childNum: i}
}

// xpub serializes the public half with a SLIP-132 version.
func (p privKey) xpub(version []byte) string {
	raw := append([]byte(nil), version...)
	raw = append(raw, p.depth)
	raw = append(raw, p.parentFP...)
	raw = binary.BigEndian.AppendUint32(raw, p.childNum)
	raw = append(raw, p.chainCode...)
	raw = append(raw, p.pub()...)
	return b58check(raw)
}

func hash160(b []byte) []byte {
	s := sha256.Sum256(b)
	r := ripemd160.New()
	r.Write(s[:])
	return r.Sum(nil)
}

func sha256d(b []byte) []byte {
	a := sha256.Sum256(b)
	c := sha256.Sum256(a[:])
	return c[:]
}

const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func b58check(payload []byte) string {
	full := append(append([]byte(nil), payload...), sha256d(payload)[:4]...)
	n := new(big.Int).SetBytes(full)
	var digits []byte
	zero, base, r := big.NewInt(0), big.NewInt(58), new(big.Int)
	for n.Cmp(zero) > 0 {
		n.QuoRem(n, base, r)
		digits = append(digits, b58[r.Int64()])
	}
	for i := 0; i < len(full) && full[i] == 0; i++ {
		digits = append(digits, '1')
	}
	var sb strings.Builder
	for i := len(digits) - 1; i >= 0; i-- {
		sb.WriteByte(digits[i])
	}
	return sb.String()
}

// b58checkDecode returns the payload, or nil if s is not base58check.
func b58checkDecode(s string) []byte {
	n := new(big.Int)
	for _, c := range []byte(s) {
		d := strings.IndexByte(b58, c)
		if d < 0 {
			return nil
		}
		n.Mul(n, big.NewInt(58)).Add(n, big.NewInt(int64(d)))
	}
	lead := len(s) - len(strings.TrimLeft(s, "1"))
	full := append(make([]byte, lead), n.Bytes()...)
	if len(full) < 5 {
		return nil
	}
	payload := full[:len(full)-4]
	if string(sha256d(payload)[:4]) != string(full[len(full)-4:]) {
		return nil
	}
	return payload
}

const bechAlphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bechChecksum(hrp string, data []byte) uint32 {
	values := make([]byte, 0, 2*len(hrp)+1+len(data))
	for _, c := range []byte(hrp) {
		values = append(values, c>>5)
	}
	values = append(values, 0)
	for _, c := range []byte(hrp) {
		values = append(values, c&31)
	}
	values = append(values, data...)
	gens := []uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i, g := range gens {
			if (b>>uint(i))&1 != 0 {
				chk ^= g
			}
		}
	}
	return chk
}

// segwitAddress encodes a mainnet witness program: bech32 for v0, bech32m for v1+.
func segwitAddress(version byte, program []byte) string {
	data := []byte{version}
	acc, nbits := 0, 0
	for _, b := range program {
		acc = acc<<8 | int(b)
		nbits += 8
		for nbits >= 5 {
			nbits -= 5
			data = append(data, byte(acc>>nbits&31))
		}
	}
	if nbits > 0 {
		data = append(data, byte(acc<<(5-nbits)&31))
	}
	target := uint32(1)
	if version > 0 {
		target = 0x2bc830a3
	}
	mod := bechChecksum("bc", append(append([]byte(nil), data...), 0, 0, 0, 0, 0, 0)) ^ target
	for i := 0; i < 6; i++ {
		data = append(data, byte(mod>>(5*(5-i))&31))
	}
	var sb strings.Builder
	sb.WriteString("bc1")
	for _, d := range data {
		sb.WriteByte(bechAlphabet[d])
	}
	return sb.String()
}

// validMainnetAddress is the simulator's own check of what it is asked about, as Esplora
// answers 400 for anything that is not an address of its network.
func validMainnetAddress(s string) bool {
	if strings.HasPrefix(strings.ToLower(s), "bc1") {
		low := strings.ToLower(s)
		if s != low && s != strings.ToUpper(s) || len(s) < 14 || len(s) > 90 {
			return false
		}
		var data []byte
		for _, c := range []byte(low[3:]) {
			d := strings.IndexByte(bechAlphabet, c)
			if d < 0 {
				return false
			}
			data = append(data, byte(d))
		}
		want := uint32(1)
		if data[0] > 0 {
			want = 0x2bc830a3
		}
		return data[0] <= 16 && bechChecksum("bc", data) == want
	}
	p := b58checkDecode(s)
	return len(p) == 21 && (p[0] == 0x00 || p[0] == 0x05)
}

// Script kinds and the scriptPubKey Esplora reports for them.
type scriptKind int

const (
	scriptP2PKH scriptKind = iota
	scriptP2SH
	scriptP2WPKH
	scriptP2TR
)

// output is an address and its script, as Esplora shows them.
type output struct {
	address    string
	script     string // hex
	scriptType string
}

func makeOutput(kind scriptKind, program []byte) output {
	h := hexOf(program)
	switch kind {
	case scriptP2SH:
		return output{b58check(append([]byte{0x05}, program...)), "a914" + h + "87", "p2sh"}
	case scriptP2WPKH:
		return output{segwitAddress(0, program), "0014" + h, "v0_p2wpkh"}
	case scriptP2TR:
		return output{segwitAddress(1, program), "5120" + h, "v1_p2tr"}
	}
	return output{b58check(append([]byte{0x00}, program...)), "76a914" + h + "88ac", "p2pkh"}
}

// outputForKey pays a compressed public key the way a wallet of that kind does.
func outputForKey(kind scriptKind, pub []byte) output {
	switch kind {
	case scriptP2SH: // P2SH-P2WPKH (BIP49)
		return makeOutput(scriptP2SH, hash160(append([]byte{0x00, 0x14}, hash160(pub)...)))
	case scriptP2WPKH:
		return makeOutput(scriptP2WPKH, hash160(pub))
	}
	return makeOutput(scriptP2PKH, hash160(pub))
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
