// Package policydoc is the one IAM policy document shape every irsakit
// policy generator writes (irsa.TrustPolicy, rdsauth.Policy,
// elasticacheauth.Policy, s3store.Policy, secrets.Policy) and irsactl
// combines: stable field order, Action/Resource as a string when they hold
// one element (as the IAM console writes them), two-space indent, no HTML
// escaping, a trailing newline.
package policydoc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Principal is set in trust policies only.
type Statement struct {
	Sid       string     `json:"Sid,omitempty"`
	Effect    string     `json:"Effect"`
	Principal *Principal `json:"Principal,omitempty"`
	Action    List       `json:"Action"`
	Resource  List       `json:"Resource,omitempty"`
	// Condition maps an operator (StringEquals, StringLike, …) to keys and
	// their values.
	Condition map[string]map[string]List `json:"Condition,omitempty"`
}

// Principal names who a trust policy trusts.
type Principal struct {
	Federated string `json:"Federated,omitempty"`
	AWS       List   `json:"AWS,omitempty"`
	Service   List   `json:"Service,omitempty"`
}

// List is a JSON string or array of strings.
type List []string

// MarshalJSON writes one element as a string, more as an array, without
// HTML escaping (an S3 key prefix may hold '&', '<' or '>').
func (l List) MarshalJSON() ([]byte, error) {
	var v any = []string(l)
	if len(l) == 1 {
		v = l[0]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON accepts a string or an array of strings.
func (l *List) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = List{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("policydoc: want a string or an array of strings, got %s", b)
	}
	*l = many
	return nil
}

// New returns a document holding statements.
func New(statements ...Statement) Document {
	return Document{Version: Version, Statement: statements}
}

// Marshal renders d as indented JSON with a trailing newline.
func Marshal(d Document) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("policydoc: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse reads a document written by Marshal (or any IAM policy whose
// statements use the fields above).
func Parse(b []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return Document{}, fmt.Errorf("policydoc: %w", err)
	}
	return d, nil
}

// Combine parses each document and returns one holding all their
// statements, in order. Statement ids that repeat get a numeric suffix so
// IAM accepts the result.
func Combine(docs ...[]byte) (Document, error) {
	out := New()
	seen := map[string]int{}
	for _, b := range docs {
		d, err := Parse(b)
		if err != nil {
			return Document{}, err
		}
		for _, st := range d.Statement {
			if st.Sid != "" {
				seen[st.Sid]++
				if n := seen[st.Sid]; n > 1 {
					st.Sid = fmt.Sprintf("%s%d", st.Sid, n)
				}
			}
			out.Statement = append(out.Statement, st)
		}
	}
	return out, nil
}
