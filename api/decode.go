package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/opencalico/opencalico"
)

// decodeJSON reads the request body into v. It is the only way handlers read JSON, so every
// endpoint answers the same way to a wrong content type (415), an oversized body (413),
// malformed JSON, unknown fields or trailing data (400) — and reads the whole body before
// the handler acts, so a bad request writes nothing.
func (s *Server) decodeJSON(r *http.Request, v any) error {
	if err := requireJSONBody(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge(tooLarge.Limit)
		}
		return opencalico.Errorf(opencalico.EBadRequest, "The request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return opencalico.Errorf(opencalico.EBadRequest, "The request body is empty: send a JSON object.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return opencalico.Errorf(opencalico.EBadRequest, "The request body has data after the JSON value.")
	}
	return nil
}

// jsonError turns a decoding error into a message that says where the body went wrong,
// without echoing its content (which may be a secret).
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return opencalico.Errorf(opencalico.EBadRequest, "The request body is not valid JSON (error at byte %d).", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return opencalico.Errorf(opencalico.EBadRequest, "Field %q must be a %s.", typ.Field, typ.Type)
		}
		return opencalico.Errorf(opencalico.EBadRequest, "The request body must be a JSON %s.", typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return opencalico.Errorf(opencalico.EBadRequest, "The request body is truncated JSON.")
	}
	// json reports unknown fields as `json: unknown field "x"`: the field name comes from
	// the request and is safe to repeat (it is a key, not a value).
	msg := err.Error()
	const prefix = "json: unknown field "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return opencalico.Errorf(opencalico.EBadRequest, "Unknown field %s in the request body.", msg[len(prefix):])
	}
	return opencalico.Errorf(opencalico.EBadRequest, "The request body is not valid JSON.")
}
