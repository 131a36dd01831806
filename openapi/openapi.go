// Package openapi holds the OpenAPI 3.1 document of opencalico — the single source of the API
// contract — and serves it as JSON (GET /openapi.json) and as a readable reference page
// (GET /docs, with its stylesheet at GET /docs/style.css).
//
// The document is written by hand in openapi.yaml (embedded). [Document] converts it to JSON once;
// [Load] parses it with kin-openapi for validation, request/response checking or code generation.
//
// The YAML is converted with go.yaml.in/yaml/v4, the YAML organisation's maintained successor of
// gopkg.in/yaml.v3 and the library kin-openapi itself parses YAML with, so the two agree on every
// scalar. The conversion walks the YAML node tree rather than decoding into maps: it keeps the
// document's key order in the JSON (paths, schemas and properties read in the order they were
// written), keeps every key whatever its meaning (so all of 3.1 — type arrays, const, webhooks,
// examples arrays, propertyNames — passes through unchanged), keeps timestamps as written, and
// rejects what JSON cannot say (duplicate keys, merge keys, non-finite numbers).
package openapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

//go:embed openapi.yaml
var specYAML []byte

// YAML returns the document as written (OpenAPI 3.1, YAML). The caller may modify the copy.
func YAML() []byte { return bytes.Clone(specYAML) }

type compiled struct {
	json []byte
	etag string
	// order holds the keys of some mappings in document order, by a "/"-joined path
	// ("paths", "webhooks", "components/schemas", …), for the reference page.
	order map[string][]string
}

var compile = sync.OnceValues(func() (*compiled, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(specYAML, &root); err != nil {
		return nil, fmt.Errorf("openapi: parse openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &root, "$"); err != nil {
		return nil, fmt.Errorf("openapi: convert openapi.yaml to JSON: %w", err)
	}
	if !json.Valid(buf.Bytes()) {
		return nil, errors.New("openapi: converted document is not valid JSON")
	}
	sum := sha256.Sum256(buf.Bytes())
	c := &compiled{
		json:  buf.Bytes(),
		etag:  `"` + hex.EncodeToString(sum[:16]) + `"`,
		order: map[string][]string{},
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	for _, p := range [][]string{
		{"paths"}, {"webhooks"}, {"tags"},
		{"components", "schemas"}, {"components", "responses"}, {"components", "securitySchemes"},
	} {
		c.order[joinPath(p)] = keysAt(doc, p...)
	}
	return c, nil
})

// Document returns the OpenAPI document as JSON. It is converted from the embedded YAML on the
// first call and cached; every call returns a fresh copy.
func Document() ([]byte, error) {
	c, err := compile()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(c.json), nil
}

// ETag returns the strong entity tag (quoted) of [Document]'s JSON.
func ETag() (string, error) {
	c, err := compile()
	if err != nil {
		return "", err
	}
	return c.etag, nil
}

// Load parses the document with kin-openapi and resolves its internal references. External
// references are not allowed. Each call returns a new *openapi3.T that the caller owns.
//
// Load does not validate; call doc.Validate(ctx), which switches to OpenAPI 3.1 rules (JSON
// Schema 2020-12: type arrays, const, webhooks, …) by itself because the document says
// `openapi: 3.1.0`.
func Load(ctx context.Context) (*openapi3.T, error) {
	data, err := Document()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi: load document: %w", err)
	}
	return doc, nil
}

func joinPath(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(s)
	}
	return b.String()
}

// keysAt returns the keys (for a mapping) or the "name" values (for a sequence of mappings, as
// the top-level tags) found at path under n, in document order.
func keysAt(n *yaml.Node, path ...string) []string {
	for _, key := range path {
		n = mappingValue(n, key)
		if n == nil {
			return nil
		}
	}
	n = deref(n)
	var keys []string
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if v := mappingValue(item, "name"); v != nil {
				keys = append(keys, v.Value)
			}
		}
	}
	return keys
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// writeJSON writes the JSON form of a YAML node. where names the node in errors.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, where string) error {
	n = deref(n)
	if n == nil {
		buf.WriteString("null")
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("%s: expected one YAML document, found %d", where, len(n.Content))
		}
		return writeJSON(buf, n.Content[0], where)
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, item, where+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s (line %d): mapping keys must be scalars", where, k.Line)
			}
			if k.ShortTag() == "!!merge" {
				return fmt.Errorf("%s (line %d): merge keys (<<) are not supported", where, k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("%s (line %d): duplicate key %q", where, k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(k.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1], where+"."+k.Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case yaml.ScalarNode:
		return writeScalar(buf, n, where)
	}
	return fmt.Errorf("%s (line %d): unsupported YAML node kind %v", where, n.Line, n.Kind)
}

func writeScalar(buf *bytes.Buffer, n *yaml.Node, where string) error {
	switch tag := n.ShortTag(); tag {
	case "!!null":
		buf.WriteString("null")
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("%s (line %d): %w", where, n.Line, err)
		}
		buf.WriteString(strconv.FormatBool(b))
		return nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return fmt.Errorf("%s (line %d): %w", where, n.Line, err)
		}
		buf.WriteString(strconv.FormatInt(i, 10))
		return nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return fmt.Errorf("%s (line %d): %w", where, n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%s (line %d): %s has no JSON form", where, n.Line, n.Value)
		}
		b, _ := json.Marshal(f)
		buf.Write(b)
		return nil
	case "!!str", "!!timestamp", "!!binary":
		// Timestamps stay strings, exactly as written; binary stays base64 text.
		b, err := json.Marshal(n.Value)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	default:
		return fmt.Errorf("%s (line %d): unsupported YAML tag %s", where, n.Line, tag)
	}
}
