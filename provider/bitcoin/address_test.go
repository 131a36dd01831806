package bitcoin

import (
	"strings"
	"testing"

	"github.com/opencalico/opencalico"
)

func TestValidateAddress(t *testing.T) {
	cases := []struct {
		name, in, want string // want "" means refused
		testnet        bool   // refused because it is a testnet address
	}{
		// BIP173 / BIP350 valid mainnet vectors.
		{"bech32 v0 upper case", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", false},
		{"bech32m v1 40 bytes", "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", false},
		{"bech32m v16", "BC1SW50QGDZ25J", "bc1sw50qgdz25j", false},
		{"bech32m v2", "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", false},
		{"taproot", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", false},
		{"p2pkh", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", false},
		{"p2sh", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", false},
		{"spaces trimmed", "  bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu ", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", false},
		// Testnet, refused for mainnet.
		{"testnet bech32 v0", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "", true},
		{"testnet bech32 v0 p2wsh", "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "", true},
		{"testnet bech32m", "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "", true},
		{"testnet p2pkh m", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "", true},
		{"testnet p2sh 2", "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "", true},
		// BIP350 invalid vectors.
		{"v1 with a bech32 checksum", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "", false},
		{"v16 with a bech32 checksum", "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "", false},
		{"v0 with a bech32m checksum", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "", false},
		{"invalid witness version", "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "", false},
		{"program too long", "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90", "", false},
		{"v0 program of 16 bytes", "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "", false},
		{"non-zero padding", "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "", false},
		{"empty data", "bc1gmk9yu", "", false},
		{"character outside the alphabet", "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "", false},
		{"mixed case", "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "", false},
		{"bech32 bad checksum", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "", false},
		{"base58 bad checksum", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "", false},
		{"base58 wrong length", base58CheckEncode(make([]byte, 22)), "", false},
		{"base58 bad character", "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a", "", false},
		{"empty", "", "", false},
		{"ethereum", "0x52908400098527886E0F7030069857D2E4169EE7", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ValidateAddress(c.in)
			if c.want != "" {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress {
				t.Fatalf("got %q, %v; want EInvalidAddress", got, err)
			}
			if c.testnet != strings.Contains(err.Error(), "testnet") {
				t.Errorf("message %q (testnet: %v)", err, c.testnet)
			}
		})
	}
}

func TestValidateExtendedKey(t *testing.T) {
	const tv1 = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
	k, err := ParseExtendedKey(tv1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base58CheckDecode(tv1)
	reversion := func(v []byte) string {
		b := append(append([]byte(nil), v...), raw[4:]...)
		return base58CheckEncode(b)
	}
	offCurve := append([]byte(nil), raw...)
	offCurve[45] = 0x02
	for i := 46; i < 78; i++ {
		offCurve[i] = 0xff // x ≥ p
	}
	cases := []struct {
		name, in, wantMsg string
	}{
		{"bad checksum", tv1[:len(tv1)-1] + "9", "checksum"},
		{"private key", "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi", "PRIVATE"},
		{"tpub", reversion([]byte{0x04, 0x35, 0x87, 0xcf}), "testnet"},
		{"vpub", reversion([]byte{0x04, 0x5f, 0x1c, 0xf6}), "testnet"},
		{"unknown version", reversion([]byte{0x01, 0x02, 0x03, 0x04}), "Unsupported"},
		{"off the curve", base58CheckEncode(offCurve), "curve"},
		{"too short", base58CheckEncode(raw[:77]), "78"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseExtendedKey(c.in)
			if opencalico.ErrorCodeOf(err) != opencalico.EInvalidAddress || !strings.Contains(err.Error(), c.wantMsg) {
				t.Fatalf("got %v, want EInvalidAddress mentioning %q", err, c.wantMsg)
			}
			if strings.Contains(err.Error(), c.in) {
				t.Errorf("the error repeats the key")
			}
		})
	}
	// The serialization round-trips, the master key's address is TV1's, and the version
	// decides the script: the same key as a zpub pays bech32.
	if k.String() != tv1 || k.Address() != "15mKKb2eos1hWa6tisdPwwDC1a5J1y9nma" {
		t.Errorf("round trip %s, address %s", k.String(), k.Address())
	}
	z, err := ParseExtendedKey(reversion(versionZpub[:]))
	if err != nil {
		t.Fatal(err)
	}
	if a := z.Address(); !strings.HasPrefix(a, "bc1q") {
		t.Errorf("zpub address %s", a)
	}
	// M/0/0 by public derivation; provider/sim/esplora gets the same address from TV1's
	// seed by private derivation.
	if a, _ := k.DeriveAddress(0, 0); a != "12CL4K2eVqj7hQTix7dM7CVHCkpP17Pry3" {
		t.Errorf("M/0/0 = %s", a)
	}
}
