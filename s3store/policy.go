package s3store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Action is an S3 IAM action [Policy] can grant.
type Action string

// The actions a Store's calls need.
const (
	// ActionListBucket: List. Granted on the bucket, limited by an
	// s3:prefix condition when the policy has a prefix.
	ActionListBucket Action = "s3:ListBucket"
	// ActionGetObject: Get, Download, Stat, Exists, PresignGet, and the
	// source of Copy.
	ActionGetObject Action = "s3:GetObject"
	// ActionPutObject: Put (single and multipart), PresignPut, and the
	// destination of Copy.
	ActionPutObject Action = "s3:PutObject"
	// ActionDeleteObject: Delete, DeleteMany.
	ActionDeleteObject Action = "s3:DeleteObject"
	// ActionAbortMultipartUpload lets a failed multipart Put clean up its
	// parts; without it they stay until a lifecycle rule removes them.
	ActionAbortMultipartUpload Action = "s3:AbortMultipartUpload"
)

// DefaultActions are what [Policy] grants when given no actions: list,
// read, write and delete, the usual application policy.
var DefaultActions = []Action{ActionListBucket, ActionGetObject, ActionPutObject, ActionDeleteObject}

// actionOrder fixes the order actions appear in; bucket-level actions are
// marked.
var actionOrder = []struct {
	a      Action
	bucket bool
}{
	{ActionListBucket, true},
	{ActionGetObject, false},
	{ActionPutObject, false},
	{ActionDeleteObject, false},
	{ActionAbortMultipartUpload, false},
}

type policyDoc struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []Action                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// Policy returns the least-privilege IAM identity policy (JSON) for a role
// that uses a Store on bucket, limited to keys beginning with prefix ("":
// the whole bucket), granting actions (none: [DefaultActions]):
//
//   - s3:ListBucket on arn:aws:s3:::BUCKET, with the condition
//     StringLike s3:prefix PREFIX* when prefix is set, so listing works only
//     under the prefix;
//   - the object actions on arn:aws:s3:::BUCKET/PREFIX*.
//
// A prefix matches as a string: "tenant-1/" scopes to one "directory",
// "tenant-1" would also match "tenant-10/". It may not contain the IAM
// wildcards '*' and '?', a policy variable "${", or start with '/'.
// The ARNs are in the aws partition.
func Policy(bucket, prefix string, actions ...Action) ([]byte, error) {
	if err := validateBucket(bucket); err != nil {
		return nil, err
	}
	if err := validatePolicyPrefix(prefix); err != nil {
		return nil, err
	}
	if len(actions) == 0 {
		actions = DefaultActions
	}
	want := map[Action]bool{}
	for _, a := range actions {
		known := false
		for _, k := range actionOrder {
			if k.a == a {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("s3store: policy: unknown action %q (want one of s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload)", a)
		}
		want[a] = true
	}

	doc := policyDoc{Version: "2012-10-17"}
	var objActions []Action
	for _, k := range actionOrder {
		if !want[k.a] {
			continue
		}
		if !k.bucket {
			objActions = append(objActions, k.a)
			continue
		}
		st := policyStatement{Sid: "ListBucket", Effect: "Allow", Action: []Action{k.a}, Resource: "arn:aws:s3:::" + bucket}
		if prefix != "" {
			st.Sid = "ListPrefix"
			st.Condition = map[string]map[string]string{"StringLike": {"s3:prefix": prefix + "*"}}
		}
		doc.Statement = append(doc.Statement, st)
	}
	if len(objActions) > 0 {
		doc.Statement = append(doc.Statement, policyStatement{
			Sid: "Objects", Effect: "Allow", Action: objActions, Resource: "arn:aws:s3:::" + bucket + "/" + prefix + "*",
		})
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func validatePolicyPrefix(p string) error {
	if len(p) > 1024 {
		return fmt.Errorf("s3store: policy prefix of %d bytes exceeds S3's 1024-byte key limit", len(p))
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("s3store: policy prefix %q is not valid UTF-8", p)
	}
	if strings.ContainsAny(p, "*?") {
		return fmt.Errorf("s3store: policy prefix %q contains an IAM wildcard ('*' or '?'); give the literal key prefix", p)
	}
	if strings.Contains(p, "${") {
		return fmt.Errorf("s3store: policy prefix %q contains a policy variable \"${\"", p)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("s3store: policy prefix %q starts with '/': S3 keys have no leading slash (use %q)", p, strings.TrimLeft(p, "/"))
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return fmt.Errorf("s3store: policy prefix %q contains a control character", p)
		}
	}
	return nil
}
