package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/money"
)

// The messages of 422 field errors are written for the client, in the terms
// of openapi.yaml: never a Go type, struct or package name.

// plainSchemaReason is the message for a schema violation the validator
// found. Most reasons of kin-openapi already read plainly; the integer
// formats and numbers beyond float range name Go types, so they are
// rephrased.
func plainSchemaReason(se *openapi3.SchemaError) string {
	var numErr *strconv.NumError
	switch {
	case se.SchemaField == "format" && se.Schema != nil && se.Schema.Format == "int64":
		return integerRange(64)
	case se.SchemaField == "format" && se.Schema != nil && se.Schema.Format == "int32":
		return integerRange(32)
	case se.SchemaField == "type" && errors.As(se.Origin, &numErr):
		return "number is too large"
	default:
		return se.Reason
	}
}

// bindingFields describes a body or parameter the validator accepted but the
// generated handler could not bind: a number beyond the range of its field,
// an amount with more than two decimals, a repeated parameter.
func bindingFields(e *echo.HTTPError) []apperr.FieldError {
	var (
		typeErr   *json.UnmarshalTypeError
		syntaxErr *json.SyntaxError
	)
	switch {
	case e.Internal == nil:
		// The generated wrappers bind path and query parameters without
		// keeping the cause; the validator has checked each one's type, so
		// what is left is a repeated parameter.
		return []apperr.FieldError{{Field: "query", Message: "a parameter is repeated or cannot be read as its type"}}
	case errors.As(e.Internal, &typeErr):
		field := "body"
		if typeErr.Field != "" {
			field += "." + typeErr.Field
		}
		return []apperr.FieldError{{Field: field, Message: plainTypeMessage(typeErr.Type)}}
	case errors.As(e.Internal, &syntaxErr):
		return []apperr.FieldError{{Field: "body", Message: "is not valid JSON"}}
	case errors.Is(e.Internal, money.ErrTooPrecise):
		return []apperr.FieldError{{Field: "body", Message: "an amount has more than two decimals"}}
	case errors.Is(e.Internal, money.ErrOutOfRange):
		return []apperr.FieldError{{Field: "body", Message: "an amount is out of range"}}
	default:
		return []apperr.FieldError{{Field: "body", Message: "cannot be read as the expected type"}}
	}
}

// plainTypeMessage says what a JSON value must be to fit a Go type.
func plainTypeMessage(t reflect.Type) string {
	if t == nil {
		return "has the wrong type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return integerRange(t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("must be an integer from 0 to %d", ^uint64(0)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Slice, reflect.Array:
		return "must be an array"
	case reflect.Struct, reflect.Map:
		return "must be an object"
	default:
		return "has the wrong type"
	}
}

func integerRange(bits int) string {
	lowest := int64(-1) << (bits - 1)
	return fmt.Sprintf("must be an integer from %d to %d", lowest, ^lowest)
}
