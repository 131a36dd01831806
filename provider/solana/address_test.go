package solana

import (
	"bytes"
	"testing"

	"github.com/opencalico/opencalico"
)

func TestValidateAddress(t *testing.T) {
	cases := []struct {
		name, in, want string // want "" means refused
	}{
		{"system program (32 zero bytes)", "11111111111111111111111111111111", "11111111111111111111111111111111"},
		{"token program", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"},
		{"USDC mint", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"},
		{"wallet, spaces trimmed", "  9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM ", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"},
		{"empty", "", ""},
		{"zero is not base58", "0WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", ""},
		{"capital O is not base58", "OWzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", ""},
		{"lower l is not base58", "lWzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", ""},
		{"31 bytes", "1111111111111111111111111111111", ""},
		{"33 bytes", "111111111111111111111111111111111", ""},
		{"too long", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWMM", ""},
		{"ethereum", "0x52908400098527886E0F7030069857D2E4169EE7", ""},
		{"bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", ""},
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
		})
	}
}

func TestBase58Decode(t *testing.T) {
	cases := []struct {
		in   string
		want []byte
	}{
		{"1", []byte{0}},
		{"11", []byte{0, 0}},
		{"2", []byte{1}},
		{"z", []byte{57}},
		{"21", []byte{58}},
		{"5Q", []byte{0xff}},
		{"LUv", []byte{0xff, 0xff}},
		{"LUw", []byte{1, 0, 0}},
		{"1112", []byte{0, 0, 0, 1}},
		{"StV1DL6CwTryKyV", []byte("hello world")},
	}
	for _, c := range cases {
		got, err := base58Decode(c.in)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("base58Decode(%q) = %x, %v; want %x", c.in, got, err, c.want)
		}
	}
}
