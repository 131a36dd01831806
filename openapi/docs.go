package openapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed docs.html.tmpl
var docsTemplateText string

//go:embed docs.css
var docsCSS []byte

var styleETag = func() string {
	sum := sha256.Sum256(docsCSS)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

var docsTemplate = template.Must(template.New("docs").Parse(docsTemplateText))

type renderedPage struct {
	html []byte
	etag string
}

var renderedDocs = sync.OnceValues(func() (*renderedPage, error) {
	c, err := compile()
	if err != nil {
		return nil, err
	}
	doc, err := Load(context.Background())
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := docsTemplate.Execute(&buf, buildPage(doc, c.order)); err != nil {
		return nil, fmt.Errorf("openapi: render docs: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &renderedPage{html: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}, nil
})

// ---- the view model of the page ----------------------------------------------------------

type pageView struct {
	Title, Version string
	Summary        string
	Description    template.HTML
	Tags           []tagView
	Webhooks       []opView
	Security       []securityView
	Responses      []namedResponseView
	Schemas        []schemaView
	Available      int
	Planned        int
}

type tagView struct {
	Name, Anchor string
	Description  template.HTML
	Ops          []opView
}

type opView struct {
	Anchor, Method, Path, OperationID, Status, Summary string
	Description                                        template.HTML
	Security                                           []string
	Params                                             []paramView
	Body                                               *bodyView
	Responses                                          []responseView
}

type paramView struct {
	Name, In    string
	Required    bool
	Type        template.HTML
	Description template.HTML
}

type bodyView struct {
	Required    bool
	Description template.HTML
	Contents    []contentView
}

type contentView struct {
	MediaType string
	Type      template.HTML
	Examples  []exampleView
}

type exampleView struct{ Name, Summary, JSON string }

type responseView struct {
	Status      string
	Ref         string // the components/responses name, when the response is a reference
	Description template.HTML
	Headers     []paramView
	Contents    []contentView
}

type namedResponseView struct {
	Name     string
	Response responseView
}

type securityView struct {
	Name, Kind  string
	Description template.HTML
}

type schemaView struct {
	Name, Title string
	Description template.HTML
	Type        template.HTML
	Enum        []string
	Props       []propView
	Examples    []exampleView
}

type propView struct {
	Name        string
	Depth       int
	Required    bool
	Type        template.HTML
	Description template.HTML
}

var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"}

func buildPage(doc *openapi3.T, order map[string][]string) pageView {
	p := pageView{}
	if doc.Info != nil {
		p.Title, p.Version, p.Summary = doc.Info.Title, doc.Info.Version, doc.Info.Summary
		p.Description = prose(doc.Info.Description)
	}

	tagIndex := map[string]int{}
	for _, t := range doc.Tags {
		tagIndex[t.Name] = len(p.Tags)
		p.Tags = append(p.Tags, tagView{Name: t.Name, Anchor: "tag-" + anchorSafe(t.Name), Description: prose(t.Description)})
	}
	addOp := func(tag string, op opView) {
		i, ok := tagIndex[tag]
		if !ok {
			tagIndex[tag] = len(p.Tags)
			i = len(p.Tags)
			p.Tags = append(p.Tags, tagView{Name: tag, Anchor: "tag-" + anchorSafe(tag)})
		}
		p.Tags[i].Ops = append(p.Tags[i].Ops, op)
	}

	paths := doc.Paths.Map()
	for _, path := range ordered(order["paths"], keysOf(paths)) {
		item := paths[path]
		for _, method := range methodOrder {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			v := buildOp(method, path, item, op)
			countStatus(&p, v.Status)
			tag := "Other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			addOp(tag, v)
		}
	}
	for _, name := range ordered(order["webhooks"], keysOf(doc.Webhooks)) {
		item := doc.Webhooks[name]
		for _, method := range methodOrder {
			if op := item.GetOperation(method); op != nil {
				v := buildOp(method, name, item, op)
				v.Anchor = "webhook-" + anchorSafe(name)
				countStatus(&p, v.Status)
				p.Webhooks = append(p.Webhooks, v)
			}
		}
	}
	if doc.Components != nil {
		for _, name := range ordered(order["components/securitySchemes"], keysOf(doc.Components.SecuritySchemes)) {
			s := doc.Components.SecuritySchemes[name].Value
			if s == nil {
				continue
			}
			kind := s.Type
			if s.Scheme != "" {
				kind += " " + s.Scheme
			}
			if s.BearerFormat != "" {
				kind += " (" + s.BearerFormat + ")"
			}
			if s.Flows != nil && s.Flows.ClientCredentials != nil {
				kind += " client credentials, token URL " + s.Flows.ClientCredentials.TokenURL
			}
			p.Security = append(p.Security, securityView{Name: name, Kind: kind, Description: prose(s.Description)})
		}
		for _, name := range ordered(order["components/responses"], keysOf(doc.Components.Responses)) {
			r := doc.Components.Responses[name]
			if r == nil || r.Value == nil {
				continue
			}
			p.Responses = append(p.Responses, namedResponseView{Name: name, Response: buildResponse("", r.Value)})
		}
		for _, name := range ordered(order["components/schemas"], keysOf(doc.Components.Schemas)) {
			if s := doc.Components.Schemas[name]; s != nil && s.Value != nil {
				p.Schemas = append(p.Schemas, buildSchema(name, s.Value))
			}
		}
	}
	return p
}

func countStatus(p *pageView, status string) {
	if status == "available" {
		p.Available++
	} else {
		p.Planned++
	}
}

func buildOp(method, path string, item *openapi3.PathItem, op *openapi3.Operation) opView {
	v := opView{
		Anchor:      "op-" + anchorSafe(op.OperationID),
		Method:      method,
		Path:        path,
		OperationID: op.OperationID,
		Status:      Status(op),
		Summary:     op.Summary,
		Description: prose(op.Description),
	}
	if op.Security != nil {
		for _, req := range *op.Security {
			if len(req) == 0 {
				v.Security = append(v.Security, "none")
				continue
			}
			names := keysOf(req)
			sort.Strings(names)
			v.Security = append(v.Security, strings.Join(names, " + "))
		}
	}
	params := append(slices.Clone(item.Parameters), op.Parameters...)
	for _, pr := range params {
		if pr == nil || pr.Value == nil {
			continue
		}
		v.Params = append(v.Params, paramView{
			Name:        pr.Value.Name,
			In:          pr.Value.In,
			Required:    pr.Value.Required,
			Type:        schemaType(pr.Value.Schema),
			Description: prose(pr.Value.Description),
		})
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		v.Body = &bodyView{Required: rb.Value.Required, Description: prose(rb.Value.Description), Contents: buildContent(rb.Value.Content)}
	}
	if op.Responses != nil {
		m := op.Responses.Map()
		codes := keysOf(m)
		sort.Strings(codes)
		for _, code := range codes {
			r := m[code]
			if r == nil || r.Value == nil {
				continue
			}
			if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
				v.Responses = append(v.Responses, responseView{Status: code, Ref: name, Description: prose(firstLine(r.Value.Description))})
				continue
			}
			v.Responses = append(v.Responses, buildResponse(code, r.Value))
		}
	}
	return v
}

func buildResponse(code string, r *openapi3.Response) responseView {
	v := responseView{Status: code}
	if r.Description != nil {
		v.Description = prose(*r.Description)
	}
	for _, name := range sortedKeys(r.Headers) {
		h := r.Headers[name]
		if h == nil || h.Value == nil {
			continue
		}
		v.Headers = append(v.Headers, paramView{Name: name, In: "header", Required: h.Value.Required, Type: schemaType(h.Value.Schema), Description: prose(h.Value.Description)})
	}
	v.Contents = buildContent(r.Content)
	return v
}

func buildContent(content openapi3.Content) []contentView {
	var out []contentView
	for _, mt := range sortedKeys(content) {
		m := content[mt]
		if m == nil {
			continue
		}
		c := contentView{MediaType: mt, Type: schemaType(m.Schema)}
		if m.Example != nil {
			c.Examples = append(c.Examples, exampleView{Name: "example", JSON: prettyJSON(m.Example)})
		}
		for _, name := range sortedKeys(m.Examples) {
			e := m.Examples[name]
			if e == nil || e.Value == nil {
				continue
			}
			c.Examples = append(c.Examples, exampleView{Name: name, Summary: e.Value.Summary, JSON: prettyJSON(e.Value.Value)})
		}
		// Without examples of its own, show those of the referenced schema component.
		if len(c.Examples) == 0 && m.Schema != nil && m.Schema.Value != nil {
			if name, ok := strings.CutPrefix(m.Schema.Ref, "#/components/schemas/"); ok {
				for i, e := range m.Schema.Value.Examples {
					c.Examples = append(c.Examples, exampleView{Name: fmt.Sprintf("%s %d", name, i+1), JSON: prettyJSON(e)})
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func buildSchema(name string, s *openapi3.Schema) schemaView {
	v := schemaView{Name: name, Title: s.Title, Description: prose(s.Description), Type: schemaShape(s)}
	for _, e := range s.Enum {
		v.Enum = append(v.Enum, fmt.Sprint(e))
	}
	v.Props = propRows(s, "", 0)
	for _, sub := range s.AllOf {
		// Show the properties an allOf member adds inline (not those of referenced components).
		if sub != nil && sub.Ref == "" && sub.Value != nil {
			v.Props = append(v.Props, propRows(sub.Value, "", 0)...)
		}
	}
	for i, e := range s.Examples {
		v.Examples = append(v.Examples, exampleView{Name: fmt.Sprintf("example %d", i+1), JSON: prettyJSON(e)})
	}
	if s.Example != nil {
		v.Examples = append(v.Examples, exampleView{Name: "example", JSON: prettyJSON(s.Example)})
	}
	return v
}

// propRows lists the properties of s, descending into inline (unreferenced) objects.
func propRows(s *openapi3.Schema, prefix string, depth int) []propView {
	var rows []propView
	for _, name := range propOrder(s) {
		p := s.Properties[name]
		row := propView{Name: prefix + name, Depth: depth, Required: slices.Contains(s.Required, name), Type: schemaType(p)}
		if p != nil && p.Value != nil {
			row.Description = prose(p.Value.Description)
		}
		rows = append(rows, row)
		if p != nil && p.Ref == "" && p.Value != nil && depth < 3 {
			inner := p.Value
			if inner.Items != nil && inner.Items.Ref == "" && inner.Items.Value != nil {
				rows = append(rows, propRows(inner.Items.Value, prefix+name+"[].", depth+1)...)
			} else {
				rows = append(rows, propRows(inner, prefix+name+".", depth+1)...)
			}
		}
	}
	return rows
}

// propOrder lists property names: required ones first, in the order `required` names them, then
// the others alphabetically (kin-openapi keeps properties in a map).
func propOrder(s *openapi3.Schema) []string {
	var names []string
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; ok && !slices.Contains(names, r) {
			names = append(names, r)
		}
	}
	for _, n := range sortedKeys(s.Properties) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// schemaShape describes a component schema itself (not a reference to it).
func schemaShape(s *openapi3.Schema) template.HTML {
	return schemaType(&openapi3.SchemaRef{Value: s})
}

// schemaType renders a schema (reference) as a short type expression with links to components.
func schemaType(ref *openapi3.SchemaRef) template.HTML {
	return template.HTML(typeExpr(ref, 0))
}

func typeExpr(ref *openapi3.SchemaRef, depth int) string {
	if ref == nil {
		return "any"
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return `<a href="#schema-` + template.HTMLEscapeString(anchorSafe(name)) + `">` + template.HTMLEscapeString(name) + `</a>`
	}
	s := ref.Value
	if s == nil || depth > 4 {
		return "any"
	}
	join := func(list openapi3.SchemaRefs, sep string) string {
		parts := make([]string, 0, len(list))
		for _, r := range list {
			parts = append(parts, typeExpr(r, depth+1))
		}
		return strings.Join(parts, sep)
	}
	switch {
	case len(s.OneOf) > 0:
		return "one of " + join(s.OneOf, " | ")
	case len(s.AnyOf) > 0:
		return "any of " + join(s.AnyOf, " | ")
	case len(s.AllOf) > 0:
		return "all of " + join(s.AllOf, " &amp; ")
	}
	var parts []string
	nullable := false
	types := []string{}
	if s.Type != nil {
		types = s.Type.Slice()
	}
	for _, t := range types {
		switch t {
		case "null":
			nullable = true
		case "array":
			parts = append(parts, "array of "+typeExpr(s.Items, depth+1))
		default:
			t := template.HTMLEscapeString(t)
			if s.Format != "" {
				t += " (" + template.HTMLEscapeString(s.Format) + ")"
			}
			parts = append(parts, t)
		}
	}
	if s.Const != nil {
		parts = append(parts, "const <code>"+template.HTMLEscapeString(compactJSON(s.Const))+"</code>")
	}
	if len(parts) == 0 {
		parts = append(parts, "any")
	}
	out := strings.Join(parts, " | ")
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, e := range s.Enum {
			vals = append(vals, "<code>"+template.HTMLEscapeString(fmt.Sprint(e))+"</code>")
		}
		out += " enum: " + strings.Join(vals, ", ")
	}
	if s.Pattern != "" {
		out += ` <span class="pattern">matching <code>` + template.HTMLEscapeString(s.Pattern) + `</code></span>`
	}
	var notes []string
	if s.Min != nil && s.Max != nil {
		notes = append(notes, fmt.Sprintf("%g–%g", *s.Min, *s.Max))
	}
	if s.Default != nil {
		notes = append(notes, "default <code>"+template.HTMLEscapeString(compactJSON(s.Default))+"</code>")
	}
	if len(notes) > 0 {
		out += ` <span class="pattern">(` + strings.Join(notes, ", ") + `)</span>`
	}
	if nullable {
		out += " | null"
	}
	return out
}

// prose renders an OpenAPI description (CommonMark in the spec) as simple, safe HTML:
// paragraphs, "- " bullet lists and `code` spans. Everything else stays plain text.
func prose(s string) template.HTML {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, para := range strings.Split(s, "\n\n") {
		lines := strings.Split(strings.TrimSpace(para), "\n")
		if strings.HasPrefix(lines[0], "- ") {
			b.WriteString("<ul>")
			var item []string
			flush := func() {
				if len(item) > 0 {
					b.WriteString("<li>" + inline(strings.Join(item, " ")) + "</li>")
					item = nil
				}
			}
			for _, l := range lines {
				l = strings.TrimSpace(l)
				if rest, ok := strings.CutPrefix(l, "- "); ok {
					flush()
					item = append(item, rest)
				} else {
					item = append(item, l)
				}
			}
			flush()
			b.WriteString("</ul>")
			continue
		}
		for i := range lines {
			lines[i] = strings.TrimSpace(lines[i])
		}
		b.WriteString("<p>" + inline(strings.Join(lines, " ")) + "</p>")
	}
	return template.HTML(b.String())
}

// inline escapes text and turns `…` spans into <code>.
func inline(s string) string {
	parts := strings.Split(s, "`")
	var b strings.Builder
	for i, part := range parts {
		switch {
		case i%2 == 1 && i < len(parts)-1:
			b.WriteString("<code>" + template.HTMLEscapeString(part) + "</code>")
		case i%2 == 1:
			b.WriteString("`" + template.HTMLEscapeString(part))
		default:
			b.WriteString(template.HTMLEscapeString(part))
		}
	}
	return b.String()
}

func firstLine(s *string) string {
	if s == nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(*s), "\n\n")
	return line
}

func prettyJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimRight(buf.String(), "\n")
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// anchorSafe makes a fragment identifier out of a name (component names may contain dots,
// which are valid in HTML ids; only spaces and unusual characters are replaced).
func anchorSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}

// ordered returns the names of want in the order of known, then any others sorted.
func ordered(known, have []string) []string {
	out := make([]string, 0, len(have))
	for _, k := range known {
		if slices.Contains(have, k) {
			out = append(out, k)
		}
	}
	var rest []string
	for _, h := range have {
		if !slices.Contains(out, h) {
			rest = append(rest, h)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := keysOf(m)
	sort.Strings(keys)
	return keys
}

// Status returns an operation's x-opencalico-status ("available" or "planned"); an operation
// without it counts as planned.
func Status(op *openapi3.Operation) string {
	if op != nil {
		if s, ok := op.Extensions["x-opencalico-status"].(string); ok && s != "" {
			return s
		}
	}
	return "planned"
}
