package bitcoin

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"math/big"
	"strings"
)

// The secp256k1 curve y² = x³ + 7 over F_p, with base point G of order n. Only public
// derivation is done here: child = parse256(IL)·G + K, on points in Jacobian coordinates so
// that a derivation costs one field inversion.
var (
	curveP, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)
	curveN, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	curveGx, _ = new(big.Int).SetString("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 16)
	curveGy, _ = new(big.Int).SetString("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8", 16)
)

// jacobian is the point (X/Z², Y/Z³); Z = 0 is the point at infinity.
type jacobian struct{ x, y, z *big.Int }

func infinity() jacobian { return jacobian{new(big.Int), new(big.Int), new(big.Int)} }

func fromAffine(x, y *big.Int) jacobian {
	return jacobian{new(big.Int).Set(x), new(big.Int).Set(y), big.NewInt(1)}
}

func mod(x *big.Int) *big.Int { return x.Mod(x, curveP) }

func mul(a, b *big.Int) *big.Int { return mod(new(big.Int).Mul(a, b)) }

func sub(a, b *big.Int) *big.Int { return mod(new(big.Int).Sub(a, b)) }

// double is dbl-2009-l for a = 0.
func (p jacobian) double() jacobian {
	if p.z.Sign() == 0 || p.y.Sign() == 0 {
		return infinity()
	}
	a := mul(p.x, p.x)
	b := mul(p.y, p.y)
	c := mul(b, b)
	xb := new(big.Int).Add(p.x, b)
	d := sub(sub(mul(xb, xb), a), c)
	d = mod(d.Lsh(d, 1))
	e := mod(new(big.Int).Mul(a, big.NewInt(3)))
	f := mul(e, e)
	x3 := sub(f, new(big.Int).Lsh(d, 1))
	y3 := sub(mul(e, sub(d, x3)), new(big.Int).Lsh(c, 3))
	z3 := mul(new(big.Int).Lsh(p.y, 1), p.z)
	return jacobian{x3, y3, z3}
}

// add is add-2007-bl.
func (p jacobian) add(q jacobian) jacobian {
	if p.z.Sign() == 0 {
		return q
	}
	if q.z.Sign() == 0 {
		return p
	}
	z1z1, z2z2 := mul(p.z, p.z), mul(q.z, q.z)
	u1, u2 := mul(p.x, z2z2), mul(q.x, z1z1)
	s1 := mul(mul(p.y, q.z), z2z2)
	s2 := mul(mul(q.y, p.z), z1z1)
	if u1.Cmp(u2) == 0 {
		if s1.Cmp(s2) == 0 {
			return p.double()
		}
		return infinity()
	}
	h := sub(u2, u1)
	h2 := new(big.Int).Lsh(h, 1)
	i := mul(h2, h2)
	j := mul(h, i)
	r := sub(s2, s1)
	r.Lsh(r, 1)
	v := mul(u1, i)
	x3 := sub(sub(mul(r, r), j), new(big.Int).Lsh(v, 1))
	y3 := sub(mul(r, sub(v, x3)), new(big.Int).Lsh(mul(s1, j), 1))
	zz := new(big.Int).Add(p.z, q.z)
	z3 := mul(sub(sub(mul(zz, zz), z1z1), z2z2), h)
	return jacobian{x3, y3, z3}
}

func (p jacobian) affine() (x, y *big.Int, ok bool) {
	if p.z.Sign() == 0 {
		return nil, nil, false
	}
	zinv := new(big.Int).ModInverse(p.z, curveP)
	zinv2 := mul(zinv, zinv)
	return mul(p.x, zinv2), mul(p.y, mul(zinv2, zinv)), true
}

// scalarBaseMult computes k·G by double-and-add from the most significant bit.
func scalarBaseMult(k *big.Int) jacobian {
	g, acc := fromAffine(curveGx, curveGy), infinity()
	for i := k.BitLen() - 1; i >= 0; i-- {
		acc = acc.double()
		if k.Bit(i) == 1 {
			acc = acc.add(g)
		}
	}
	return acc
}

// decompress parses a 33-byte SEC1 compressed point and checks that it is on the curve.
func decompress(b []byte) (x, y *big.Int, err error) {
	if len(b) != 33 || (b[0] != 2 && b[0] != 3) {
		return nil, nil, errors.New("not a compressed public key")
	}
	x = new(big.Int).SetBytes(b[1:])
	if x.Cmp(curveP) >= 0 {
		return nil, nil, errors.New("public key off the curve")
	}
	rhs := mod(new(big.Int).Add(new(big.Int).Exp(x, big.NewInt(3), curveP), big.NewInt(7)))
	// p ≡ 3 (mod 4), so a square root is rhs^((p+1)/4).
	exp := new(big.Int).Rsh(new(big.Int).Add(curveP, big.NewInt(1)), 2)
	y = new(big.Int).Exp(rhs, exp, curveP)
	if mul(y, y).Cmp(rhs) != 0 {
		return nil, nil, errors.New("public key off the curve")
	}
	if y.Bit(0) != uint(b[0]&1) {
		y.Sub(curveP, y)
	}
	return x, y, nil
}

func compress(x, y *big.Int) []byte {
	out := make([]byte, 33)
	out[0] = 2 | byte(y.Bit(0))
	x.FillBytes(out[1:])
	return out
}

// ExtendedKey is a BIP32 extended public key (xpub, ypub or zpub).
type ExtendedKey struct {
	kind        scriptKind
	version     [4]byte
	depth       byte
	parentFP    [4]byte
	childNumber uint32
	chainCode   [32]byte
	pubkey      []byte // compressed
}

// SLIP-132 version bytes.
var (
	versionXpub = [4]byte{0x04, 0x88, 0xb2, 0x1e}
	versionYpub = [4]byte{0x04, 0x9d, 0x7c, 0xb2}
	versionZpub = [4]byte{0x04, 0xb2, 0x47, 0x46}
)

var extendedVersions = map[[4]byte]scriptKind{versionXpub: kindP2PKH, versionYpub: kindP2SHP2WPKH, versionZpub: kindP2WPKH}

// Versions that are recognized only to be refused with a helpful message.
var (
	testnetVersions = map[[4]byte]bool{
		{0x04, 0x35, 0x87, 0xcf}: true, // tpub
		{0x04, 0x4a, 0x52, 0x62}: true, // upub
		{0x04, 0x5f, 0x1c, 0xf6}: true, // vpub
	}
	privateVersions = map[[4]byte]bool{
		{0x04, 0x88, 0xad, 0xe4}: true, // xprv
		{0x04, 0x9d, 0x78, 0x78}: true, // yprv
		{0x04, 0xb2, 0x43, 0x0c}: true, // zprv
		{0x04, 0x35, 0x83, 0x94}: true, // tprv
	}
)

// IsExtendedKey reports whether s looks like an extended key rather than an address, by its
// prefix (xpub…, ypub…, zpub…, and the testnet and private ones, to refuse them clearly).
func IsExtendedKey(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 4 {
		return false
	}
	switch s[:4] {
	case "xpub", "ypub", "zpub", "tpub", "upub", "vpub", "xprv", "yprv", "zprv", "tprv", "Ypub", "Zpub":
		return true
	}
	return false
}

// ParseExtendedKey validates an xpub, ypub or zpub: base58check, version, length and a
// public key on the curve. Errors have code EInvalidAddress and never repeat the input (a
// private key pasted by mistake must not end up in a log).
func ParseExtendedKey(s string) (*ExtendedKey, error) {
	raw, err := base58CheckDecode(strings.TrimSpace(s))
	if err != nil {
		return nil, invalidAddress("Not a valid extended public key: %v.", err)
	}
	if len(raw) != 78 {
		return nil, invalidAddress("Not a valid extended public key: it holds %d bytes, not 78.", len(raw))
	}
	var version [4]byte
	copy(version[:], raw[:4])
	kind, ok := extendedVersions[version]
	switch {
	case privateVersions[version]:
		return nil, invalidAddress("This is an extended PRIVATE key; never share it. Give the extended public key (xpub, ypub or zpub) instead.")
	case testnetVersions[version]:
		return nil, invalidAddress("This is a testnet extended key; only mainnet keys (xpub, ypub, zpub) are supported.")
	case !ok:
		return nil, invalidAddress("Unsupported extended key version %x; use an xpub, ypub or zpub of a single-signature wallet.", version)
	}
	k := &ExtendedKey{kind: kind, version: version, depth: raw[4], childNumber: binary.BigEndian.Uint32(raw[9:13])}
	copy(k.parentFP[:], raw[5:9])
	copy(k.chainCode[:], raw[13:45])
	if _, _, err := decompress(raw[45:78]); err != nil {
		return nil, invalidAddress("Not a valid extended public key: %v.", err)
	}
	k.pubkey = append([]byte(nil), raw[45:78]...)
	return k, nil
}

// ValidateExtendedKey checks an xpub, ypub or zpub and returns it trimmed.
func ValidateExtendedKey(s string) (string, error) {
	if _, err := ParseExtendedKey(s); err != nil {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// String serializes the key in its own version (xpub, ypub or zpub).
func (k *ExtendedKey) String() string {
	raw := make([]byte, 0, 78)
	raw = append(raw, k.version[:]...)
	raw = append(raw, k.depth)
	raw = append(raw, k.parentFP[:]...)
	raw = binary.BigEndian.AppendUint32(raw, k.childNumber)
	raw = append(raw, k.chainCode[:]...)
	raw = append(raw, k.pubkey...)
	return base58CheckEncode(raw)
}

// Child derives the non-hardened child i (CKDpub of BIP32). The vanishingly rare invalid
// child (IL ≥ n or the point at infinity) is an error, as BIP32 says to skip that index.
func (k *ExtendedKey) Child(i uint32) (*ExtendedKey, error) {
	if i >= 1<<31 {
		return nil, errors.New("hardened derivation needs the private key")
	}
	mac := hmac.New(sha512.New, k.chainCode[:])
	mac.Write(k.pubkey)
	mac.Write(binary.BigEndian.AppendUint32(nil, i))
	sum := mac.Sum(nil)
	il := new(big.Int).SetBytes(sum[:32])
	if il.Cmp(curveN) >= 0 {
		return nil, errors.New("invalid child key; skip this index")
	}
	px, py, err := decompress(k.pubkey)
	if err != nil {
		return nil, err
	}
	cx, cy, ok := scalarBaseMult(il).add(fromAffine(px, py)).affine()
	if !ok {
		return nil, errors.New("invalid child key; skip this index")
	}
	child := &ExtendedKey{kind: k.kind, version: k.version, depth: k.depth + 1, childNumber: i, pubkey: compress(cx, cy)}
	copy(child.parentFP[:], hash160(k.pubkey)[:4])
	copy(child.chainCode[:], sum[32:])
	return child, nil
}

// PublicKey returns the compressed public key.
func (k *ExtendedKey) PublicKey() []byte { return append([]byte(nil), k.pubkey...) }

// Address returns the address this key is paid to, by the extended key's kind: P2PKH for an
// xpub, P2SH-P2WPKH for a ypub, P2WPKH for a zpub.
func (k *ExtendedKey) Address() string { return addressOf(k.kind, k.pubkey) }

// DeriveAddress returns the address at chain/index (chain 0 receive, 1 change).
func (k *ExtendedKey) DeriveAddress(chain, index uint32) (string, error) {
	c, err := k.Child(chain)
	if err != nil {
		return "", err
	}
	leaf, err := c.Child(index)
	if err != nil {
		return "", err
	}
	return leaf.Address(), nil
}
