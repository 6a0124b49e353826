package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/ordersvc/orders/internal/apperr"
)

// Bounds on a request body that the contract implies but a validator
// working on a decoded document would check only after paying for it.
const (
	// maxNumberLiteral is the longest number literal read: a price or an id
	// needs fewer than 20 characters; a million-digit one costs seconds to parse.
	maxNumberLiteral = 40
	// maxObjectMembers bounds the members of one object, declared or not:
	// no object in the contract has more than a handful.
	maxObjectMembers = 64
	// maxStringBytes bounds one string of a JSON body, declared or not, as
	// written (escapes included): the longest declared string is 1,000
	// characters. Without it, the decoder would hold a whole 1 MiB string.
	maxStringBytes = 16 << 10
	// maxFormFields and maxFormBytes bound a form body: its fields are few
	// and short.
	maxFormFields = 32
	maxFormBytes  = 64 << 10
)

// bodyGate reads each request body of the contract once, within the bounds
// the contract sets, before anything decodes it: array and string lengths
// (maxItems, maxLength), number literal lengths, member counts, and a JSON
// type for every declared member. It refuses what a decoder would read
// ambiguously: a duplicated member, or one whose name differs from a
// declared one only by letter case (encoding/json would bind it). What it
// passes on is a canonical copy holding only the declared members, so the
// validator and the handler read the same bytes. Undeclared members are
// ignored, as the original service ignored them.
//
// It runs after authentication: a body is never read for a caller the
// headers already refuse.
type bodyGate struct {
	rules map[operationKey]bodyRule
}

// bodyRule is what an operation's request body must look like.
type bodyRule struct {
	mediaType string
	schema    *openapi3.Schema
}

func newBodyGate(ops map[operationKey]*openapi3.Operation) bodyGate {
	g := bodyGate{rules: map[operationKey]bodyRule{}}
	for key, op := range ops {
		if op.RequestBody == nil || op.RequestBody.Value == nil {
			continue
		}
		for mediaType, content := range op.RequestBody.Value.Content {
			if content.Schema != nil && content.Schema.Value != nil {
				g.rules[key] = bodyRule{mediaType: mediaType, schema: content.Schema.Value}
			}
		}
	}
	return g
}

func (g bodyGate) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		rule, ok := g.rules[operationKey{req.Method, c.Path()}]
		if !ok || req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		if err != nil || mediaType != rule.mediaType {
			return next(c) // the validator names the expected media type
		}
		var canonical []byte
		switch mediaType {
		case echo.MIMEApplicationJSON:
			canonical, err = canonicalJSON(req.Body, rule.schema)
		case echo.MIMEApplicationForm:
			canonical, err = canonicalForm(req.Body, rule.schema)
		default:
			return next(c)
		}
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(canonical))
		req.ContentLength = int64(len(canonical))
		return next(c)
	}
}

// errAbort ends a scan early: what was found already decides the answer.
var errAbort = errors.New("scan aborted")

// jsonScan walks a JSON body token by token beside its schema, writing the
// declared parts to out until the first problem, then only collecting problems.
type jsonScan struct {
	dec     *jsontext.Decoder
	out     *jsontext.Encoder
	buf     bytes.Buffer
	path    []string
	scratch []byte
	fields  fieldList
}

func canonicalJSON(body io.Reader, schema *openapi3.Schema) ([]byte, error) {
	s := &jsonScan{dec: jsontext.NewDecoder(&scalarGuard{r: body})}
	s.out = jsontext.NewEncoder(&s.buf)
	var err error
	if s.dec.PeekKind() == 0 { // no value: why?
		if _, err = s.dec.ReadToken(); errors.Is(err, io.EOF) {
			return nil, nil // no body: the validator says it is required
		}
	} else if err = s.value(schema); err == nil {
		if _, err = s.dec.ReadToken(); errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	switch {
	case err == nil || errors.Is(err, errAbort):
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return nil, echo.ErrStatusRequestEntityTooLarge
	case errors.Is(err, errStringTooLong):
		s.fields.add("body"+pointerPath(pointerTokens(s.dec.StackPointer())), errStringTooLong.Error())
	case errors.Is(err, errNumberTooLong):
		s.fields.add("body"+pointerPath(pointerTokens(s.dec.StackPointer())), errNumberTooLong.Error())
	case errors.Is(err, jsontext.ErrDuplicateName):
		var syn *jsontext.SyntacticError
		errors.As(err, &syn)
		s.fields.add("body"+pointerPath(pointerTokens(syn.JSONPointer)), "appears more than once")
	default:
		return nil, &requestInvalid{status: http.StatusBadRequest, fields: []apperr.FieldError{{
			Field: "body", Message: "not valid JSON: " + strings.TrimPrefix(err.Error(), "jsontext: "),
		}}}
	}
	if s.fields.total > 0 {
		return nil, &requestInvalid{status: http.StatusUnprocessableEntity, fields: s.fields.list()}
	}
	return bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")), nil
}

// problem records a field problem at the current path and stops the output.
func (s *jsonScan) problem(format string, args ...any) {
	s.fields.add("body"+pointerPath(s.path), fmt.Sprintf(format, args...))
}

func (s *jsonScan) write(t jsontext.Token) error {
	if s.fields.total > 0 {
		return nil
	}
	return s.out.WriteToken(t)
}

func (s *jsonScan) writeValue(v jsontext.Value) error {
	if s.fields.total > 0 {
		return nil
	}
	return s.out.WriteValue(v)
}

func (s *jsonScan) value(schema *openapi3.Schema) error {
	kind := s.dec.PeekKind()
	if kind == 0 {
		_, err := s.dec.ReadToken() // the reason there is no value
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	want := jsonKindOf(schema)
	if want == 0 {
		return s.skip() // nothing declared here, or nothing to bound
	}
	if got := kind; got != want && (got != 't' || want != 'f') {
		s.problem("must be %s, not %s", kindName(want), kindName(got))
		return s.skip()
	}
	switch kind {
	case '{':
		return s.object(schema)
	case '[':
		return s.array(schema)
	}
	v, err := s.dec.ReadValue()
	if err != nil {
		return err
	}
	switch kind {
	case '"':
		if schema.MaxLength != nil {
			if s.scratch, err = jsontext.AppendUnquote(s.scratch[:0], v); err != nil {
				return err
			}
			if longerThan(utf8.RuneCount(s.scratch), schema.MaxLength) {
				s.problem("must be at most %d characters long", *schema.MaxLength)
				return nil
			}
		}
	case '0':
		if places, ok := decimalStep(schema); ok && decimals(v) > places {
			s.problem("number must be a multiple of %g", *schema.MultipleOf)
			return nil
		}
	}
	return s.writeValue(v) // numbers: scalarGuard has bounded their length
}

// decimalStep reports whether schema's multipleOf is a power of ten with
// places decimals (1, 0.1, 0.01, ...). The gate checks such a step on the
// number as written, exactly, where a validator working on a float64 pays
// for rational arithmetic (and a formatted message) on every number; see
// validatorSpec.
func decimalStep(schema *openapi3.Schema) (places int, ok bool) {
	if schema.MultipleOf == nil {
		return 0, false
	}
	for places = 0; places <= 9; places++ {
		if *schema.MultipleOf == math.Pow10(-places) {
			return places, true
		}
	}
	return 0, false
}

// decimals is the number of decimals a JSON number literal has once written
// without an exponent and without trailing zeros: 2 for 2.90e-1, 0 for
// 1.5e1. An exponent beyond a million counts as a whole number when
// positive and as more decimals than any step has when negative.
func decimals(literal []byte) int {
	const hugeExponent = 1_000_000
	mantissa, exponent := literal, []byte(nil)
	if i := bytes.IndexAny(literal, "eE"); i >= 0 {
		mantissa, exponent = literal[:i], literal[i+1:]
	}
	whole, fraction, _ := bytes.Cut(mantissa, []byte("."))
	scale := len(fraction)
	if len(exponent) > 0 {
		exp, err := strconv.Atoi(string(exponent))
		switch {
		case (err != nil || exp < -hugeExponent) && exponent[0] == '-':
			return math.MaxInt
		case err != nil || exp > hugeExponent:
			return 0
		}
		scale -= exp
	}
	// Trailing zeros mean nothing: 2.90 has one decimal, 100e-4 two.
	meant := bytes.TrimRight(fraction, "0")
	zeros := len(fraction) - len(meant)
	if len(meant) == 0 {
		meantWhole := bytes.TrimRight(whole, "0")
		if len(bytes.TrimLeft(meantWhole, "-")) == 0 {
			return 0 // zero
		}
		zeros += len(whole) - len(meantWhole)
	}
	return max(scale-zeros, 0)
}

// skip passes over a value without keeping it; the decoder still checks its
// syntax and refuses duplicate names in it.
func (s *jsonScan) skip() error { return s.dec.SkipValue() }

func (s *jsonScan) object(schema *openapi3.Schema) error {
	if _, err := s.dec.ReadToken(); err != nil {
		return err
	}
	if err := s.write(jsontext.BeginObject); err != nil {
		return err
	}
	for members := 1; s.dec.PeekKind() != '}'; members++ {
		if members > maxObjectMembers {
			s.problem("has more than %d members", maxObjectMembers)
			return errAbort
		}
		raw, err := s.dec.ReadValue()
		if err != nil {
			return err
		}
		if s.scratch, err = jsontext.AppendUnquote(s.scratch[:0], raw); err != nil {
			return err
		}
		name, declared, exact := declaredMember(schema, s.scratch)
		if !declared {
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		if !exact {
			s.path = append(s.path, string(s.scratch))
			s.problem("unknown member; member names are case-sensitive: did you mean %q?", name)
			s.path = s.path[:len(s.path)-1]
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		if err := s.write(jsontext.String(name)); err != nil {
			return err
		}
		s.path = append(s.path, name)
		err = s.value(schema.Properties[name].Value)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return err
	}
	return s.write(jsontext.EndObject)
}

func (s *jsonScan) array(schema *openapi3.Schema) error {
	if _, err := s.dec.ReadToken(); err != nil {
		return err
	}
	if err := s.write(jsontext.BeginArray); err != nil {
		return err
	}
	var items *openapi3.Schema
	if schema.Items != nil {
		items = schema.Items.Value
	}
	for n := 0; s.dec.PeekKind() != ']'; n++ {
		if schema.MaxItems != nil && uint64(n) >= *schema.MaxItems {
			s.problem("must have at most %d items", *schema.MaxItems)
			return errAbort
		}
		s.path = append(s.path, strconv.Itoa(n))
		err := s.value(items)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return err
	}
	return s.write(jsontext.EndArray)
}

// longerThan reports whether a length of n characters exceeds maxLength.
func longerThan(n int, maxLength *uint64) bool {
	return maxLength != nil && uint64(n) > *maxLength //nolint:gosec // a length is never negative
}

// declaredMember finds the declared member name matches: exactly, or (exact
// false) only when letter case is ignored, the way encoding/json would bind it.
func declaredMember(schema *openapi3.Schema, name []byte) (declared string, found, exact bool) {
	if _, ok := schema.Properties[string(name)]; ok {
		return string(name), true, true
	}
	for prop := range schema.Properties {
		if bytes.EqualFold([]byte(prop), name) {
			return prop, true, false
		}
	}
	return "", false, false
}

// jsonKindOf is the JSON kind (as jsontext names kinds) a schema asks for,
// or 0 when it asks for none in particular.
func jsonKindOf(schema *openapi3.Schema) jsontext.Kind {
	if schema == nil || schema.Type == nil {
		return 0
	}
	switch {
	case schema.Type.Is(openapi3.TypeObject):
		return '{'
	case schema.Type.Is(openapi3.TypeArray):
		return '['
	case schema.Type.Is(openapi3.TypeString):
		return '"'
	case schema.Type.Is(openapi3.TypeNumber), schema.Type.Is(openapi3.TypeInteger):
		return '0'
	case schema.Type.Is(openapi3.TypeBoolean):
		return 'f'
	}
	return 0
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a JSON value"
}

// canonicalForm applies the same rules to a form body: bounded field count,
// each declared field at most once and spelled exactly, values within their
// maxLength; undeclared fields are dropped.
func canonicalForm(body io.Reader, schema *openapi3.Schema) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(body, maxFormBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxFormBytes {
		return nil, &requestInvalid{status: http.StatusUnprocessableEntity, fields: []apperr.FieldError{{
			Field: "body", Message: fmt.Sprintf("a form body is at most %d bytes", maxFormBytes),
		}}}
	}
	if n := bytes.Count(raw, []byte("&")) + 1; n > maxFormFields {
		return nil, &requestInvalid{status: http.StatusUnprocessableEntity, fields: []apperr.FieldError{{
			Field: "body", Message: fmt.Sprintf("has %d fields; at most %d are read", n, maxFormFields),
		}}}
	}
	values, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, &requestInvalid{status: http.StatusUnprocessableEntity, fields: []apperr.FieldError{{
			Field: "body", Message: "not a valid form body",
		}}}
	}
	var fields fieldList
	kept := url.Values{}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		name, declared, exact := declaredMember(schema, []byte(key))
		switch {
		case !declared:
			continue
		case !exact:
			fields.add("body."+key, fmt.Sprintf("unknown field; field names are case-sensitive: did you mean %q?", name))
			continue
		case len(values[key]) > 1:
			fields.add("body."+key, "appears more than once")
			continue
		}
		prop := schema.Properties[name].Value
		if prop != nil && longerThan(utf8.RuneCountInString(values[key][0]), prop.MaxLength) {
			fields.add("body."+key, fmt.Sprintf("must be at most %d characters long", *prop.MaxLength))
			continue
		}
		kept[key] = values[key]
	}
	if fields.total > 0 {
		return nil, &requestInvalid{status: http.StatusUnprocessableEntity, fields: fields.list()}
	}
	return []byte(kept.Encode()), nil
}

// pointerTokens splits a JSON pointer into its reference tokens.
func pointerTokens(p jsontext.Pointer) []string {
	var out []string
	for tok := range p.Tokens() {
		out = append(out, tok)
	}
	return out
}

var (
	errStringTooLong = fmt.Errorf("string is longer than %d bytes", maxStringBytes)
	errNumberTooLong = fmt.Errorf("number literal is longer than %d characters", maxNumberLiteral)
)

// scalarGuard fails a JSON body as soon as one string or number in it grows
// past its bound, wherever it sits: the decoder buffers a whole scalar
// before handing it over, so this is what keeps a request's memory small.
type scalarGuard struct {
	r        io.Reader
	err      error // once too long, always
	inString bool
	escaped  bool
	run      int // length of the current string or number so far
}

func (g *scalarGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for _, c := range p[:n] {
		switch {
		case g.inString:
			g.run++
			switch {
			case g.escaped:
				g.escaped = false
			case c == '\\':
				g.escaped = true
			case c == '"':
				g.inString, g.run = false, 0
			}
			if g.run > maxStringBytes {
				g.err = errStringTooLong
				return 0, g.err
			}
		case c == '"':
			g.inString, g.run = true, 1
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			if g.run++; g.run > maxNumberLiteral {
				g.err = errNumberTooLong
				return 0, g.err
			}
		default:
			g.run = 0
		}
	}
	return n, err
}
