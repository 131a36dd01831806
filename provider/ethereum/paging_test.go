package ethereum

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/opencalico/opencalico"
	"github.com/opencalico/opencalico/provider"
)

// TestIdenticalRowsAcrossPagesOfOneBlock: tokentx rows carry no logIndex, so identical
// transfers of one transaction are told apart by rank; when they fill more than a page of one
// block, the rank must go on across the block's pages or the later ones are dropped.
func TestIdenticalRowsAcrossPagesOfOneBlock(t *testing.T) {
	const wallet = "0x00000000000000000000000000000000000000aa"
	row := map[string]string{"blockNumber": "10", "timeStamp": "1700000000", "transactionIndex": "0",
		"hash": "0x11" + "00000000000000000000000000000000000000000000000000000000000000",
		"from": "0x00000000000000000000000000000000000000bb", "to": wallet,
		"contractAddress": "0x00000000000000000000000000000000000000cc", "value": "1",
		"tokenName": "Token", "tokenSymbol": "TKN", "tokenDecimal": "0"}
	tokens := []map[string]string{row, row, row}
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/api", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, _ := strconv.ParseInt(q.Get("startblock"), 10, 64)
		end, _ := strconv.ParseInt(q.Get("endblock"), 10, 64)
		page, _ := strconv.Atoi(q.Get("page"))
		offset, _ := strconv.Atoi(q.Get("offset"))
		var in []map[string]string
		if q.Get("action") == ActionTokenTx {
			for _, x := range tokens {
				if b, _ := strconv.ParseInt(x["blockNumber"], 10, 64); b >= start && b <= end {
					in = append(in, x)
				}
			}
		}
		lo, hi := min((page-1)*offset, len(in)), min(page*offset, len(in))
		if lo == hi {
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "0", "message": "No transactions found", "result": []any{}})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "1", "message": "OK", "result": in[lo:hi]})
	})
	mux.HandleFunc("/rpc/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x64"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ad := New(Options{BaseURL: srv.URL, APIKey: "K", Offset: 2, Confirmations: 1, RequestsPerSecond: 1000,
		RPCURL: func(chain string) string { return srv.URL + "/rpc/" + chain }})
	var got []*opencalico.Transaction
	err := ad.History(context.Background(), provider.Account{ConnectionID: "c", UserID: "u", Chain: "ethereum", Address: wallet}, nil,
		func(_ context.Context, p provider.Page) error { got = append(got, p.Transactions...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Outputs) != 1 || got[0].Outputs[0].Amount.String() != "3" {
		t.Fatalf("got %d transactions (%+v); want one receive of 3", len(got), got)
	}
}
