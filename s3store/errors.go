package s3store

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

var (
	// ErrNotFound: the object (or its bucket) does not exist.
	ErrNotFound = errors.New("s3store: not found")
	// ErrAccessDenied: IAM or the bucket policy refused the request. The
	// role's policy usually lacks the action for this key; see Policy.
	ErrAccessDenied = errors.New("s3store: access denied")
)

// Error is the error of a failed S3 call. errors.Is matches it against
// [ErrNotFound] and [ErrAccessDenied] when they apply, and errors.As reaches
// the SDK error (smithy.APIError, *awshttp.ResponseError, the typed
// exceptions of service/s3/types) through it.
type Error struct {
	Op     string // the Store method: "put", "get", "stat", ...
	Bucket string
	Key    string // empty for bucket-level calls
	Source string // Copy's source, s3://bucket/key
	Err    error  // the SDK's error

	kind        error // ErrNotFound, ErrAccessDenied or nil
	credentials bool  // the credentials could not be obtained
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("s3store: ")
	b.WriteString(e.Op)
	if e.Source != "" {
		b.WriteString(" ")
		b.WriteString(e.Source)
		b.WriteString(" to")
	}
	b.WriteString(" s3://")
	b.WriteString(e.Bucket)
	if e.Key != "" {
		b.WriteString("/")
		b.WriteString(e.Key)
	}
	switch {
	case e.credentials:
		b.WriteString(": getting credentials failed (before S3 was called)")
	case e.kind == ErrNotFound:
		b.WriteString(": not found")
	case e.kind == ErrAccessDenied:
		b.WriteString(": access denied (does the role's policy allow this action on this key? see s3store.Policy)")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the sentinel (if any) and the SDK error.
func (e *Error) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.Err}
	}
	return []error{e.Err}
}

func wrapErr(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Bucket: bucket, Key: key, Err: err}
	if credentialsFailure(err) {
		e.credentials = true
	} else {
		e.kind = classify(err)
	}
	return e
}

// credentialsFailure reports whether err came from fetching credentials
// (an STS, SSO or IMDS call inside the S3 call) rather than from S3: an
// AccessDenied from STS means the role's trust policy refused the token,
// not that the S3 policy lacks an action, so it must not read as
// ErrAccessDenied.
func credentialsFailure(err error) bool {
	found := false
	var walk func(error)
	walk = func(err error) {
		for err != nil && !found {
			if oe, ok := err.(*smithy.OperationError); ok && oe.ServiceID != "" && oe.ServiceID != "S3" {
				found = true
				return
			}
			switch u := err.(type) {
			case interface{ Unwrap() []error }:
				for _, e := range u.Unwrap() {
					walk(e)
				}
				return
			case interface{ Unwrap() error }:
				err = u.Unwrap()
			default:
				return
			}
		}
	}
	walk(err)
	return found
}

// classify maps an SDK error to a sentinel. Not-found conditions are
// typed exceptions where the operation models them; S3 models no
// AccessDenied exception, so that one is recognized by its code, or by a
// bare 403 on HEAD requests, whose responses carry no body and so no code.
func classify(err error) error {
	var (
		noKey    *types.NoSuchKey
		notFound *types.NotFound
		noBucket *types.NoSuchBucket
	)
	switch {
	case errors.As(err, &noKey), errors.As(err, &notFound), errors.As(err, &noBucket):
		return ErrNotFound
	}
	// Operations whose model lacks the exception (CopyObject's NoSuchKey,
	// any AccessDenied) surface as generic API errors with the code.
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if k := keyErrorKind(ae.ErrorCode()); k != nil {
			return k
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Request != nil && re.Response.Request.Method == http.MethodHead {
		switch re.HTTPStatusCode() {
		case http.StatusForbidden:
			return ErrAccessDenied
		case http.StatusNotFound:
			return ErrNotFound
		}
	}
	return nil
}

// KeyError is one key DeleteMany could not delete.
type KeyError struct {
	Key     string
	Code    string // S3's error code, e.g. AccessDenied
	Message string
	Err     error // set instead of Code when the whole request failed

	kind error
}

func (e *KeyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %s: %s", e.Key, e.Code, e.Message)
}

// Unwrap returns the sentinel (if any) and the request error (if any).
func (e *KeyError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// DeleteError reports the keys DeleteMany could not delete; every other
// key was deleted. errors.Is(err, ErrAccessDenied) holds when any key was
// refused for that reason.
type DeleteError struct {
	Bucket string
	Keys   []*KeyError
}

func (e *DeleteError) Error() string {
	const show = 3
	var b strings.Builder
	fmt.Fprintf(&b, "s3store: delete from s3://%s: %d key(s) not deleted: ", e.Bucket, len(e.Keys))
	for i, k := range e.Keys {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Keys)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k.Error())
	}
	return b.String()
}

// Unwrap returns the per-key errors.
func (e *DeleteError) Unwrap() []error {
	errs := make([]error, len(e.Keys))
	for i, k := range e.Keys {
		errs[i] = k
	}
	return errs
}

func keyErrorKind(code string) error {
	switch code {
	case "AccessDenied", "AllAccessDisabled":
		return ErrAccessDenied
	case "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound":
		return ErrNotFound
	}
	return nil
}
