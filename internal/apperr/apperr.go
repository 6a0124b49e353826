// Package apperr is the project's error taxonomy. Domain packages wrap these
// sentinels with %w; the HTTP layer maps them to status codes in one place.
package apperr

import "errors"

var (
	// ErrNotFound means the resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrForbidden means the resource exists but belongs to someone else.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict means the request contradicts the resource's current state.
	ErrConflict = errors.New("conflict")
	// ErrUnauthenticated means missing or invalid credentials.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrAlreadyExists means a unique value is taken (400 in the original contract).
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid means the input is well-formed but not acceptable.
	ErrInvalid = errors.New("invalid input")
	// ErrInvalidGrant means a refresh token that is unknown, expired,
	// revoked or already used (OAuth 2.0's invalid_grant, RFC 6749 5.2).
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrUnavailable means a dependency the request needs cannot be reached
	// or is restarting: an outage, which the same request may outlive.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrBusy means the request waited longer than allowed for its turn at a
	// bounded resource (the password hashing workers): it may succeed later.
	ErrBusy = errors.New("too busy")
	// ErrInProgress means an earlier request with the same idempotency key
	// is still running: retrying shortly gets its answer.
	ErrInProgress = errors.New("in progress")
	// ErrPreconditionFailed means the resource has changed since the version
	// the client named (If-Match); nothing was changed.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrPreconditionRequired means this deployment accepts the change only
	// as a conditional request (If-Match), and none was made.
	ErrPreconditionRequired = errors.New("precondition required")
)

// MissingError names a part of the request that the contract leaves
// optional but this deployment requires (a 400, not a 422: the request is
// valid, the configuration asks for more).
type MissingError struct {
	Field string // e.g. "header.Idempotency-Key"
}

func (e *MissingError) Error() string { return e.Field + " is required" }

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string // e.g. "body.items[0].price" or "query.cursor"
	Message string
}

// ValidationError lists the invalid fields of a request; it matches ErrInvalid.
type ValidationError struct {
	Fields []FieldError
}

// Invalid returns a ValidationError for one field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}

func (e *ValidationError) Error() string {
	if len(e.Fields) == 0 {
		return ErrInvalid.Error()
	}
	return ErrInvalid.Error() + ": " + e.Fields[0].Field + ": " + e.Fields[0].Message
}

// Is makes errors.Is(err, ErrInvalid) true for a ValidationError.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ConflictError says why a request contradicts the current state; it matches ErrConflict.
type ConflictError struct {
	Detail string
}

func (e *ConflictError) Error() string { return ErrConflict.Error() + ": " + e.Detail }

// Is makes errors.Is(err, ErrConflict) true for a ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
