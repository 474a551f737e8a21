package s3store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
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

// PolicyOptions configure [Policy]. The zero value grants [DefaultActions]
// on the whole bucket in the aws partition.
type PolicyOptions struct {
	// Prefix limits the grant to keys under it ("": the whole bucket). It
	// is a "directory": a prefix not ending in '/' gets one, so "notes"
	// grants notes/… and not notes-private/… . It may not contain the IAM
	// wildcards '*' and '?', a policy variable "${", or start with '/'.
	Prefix string
	// Actions to grant. Default [DefaultActions]. Add
	// [ActionAbortMultipartUpload] so a failed multipart Put can clean up
	// its parts.
	Actions []Action
	// Partition of the ARNs (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b,
	// aws-iso-e, aws-iso-f, aws-eusc). Default "aws".
	Partition string
}

// Policy returns the least-privilege IAM identity policy (JSON) for a role
// that uses a Store on bucket:
//
//   - s3:ListBucket on arn:PARTITION:s3:::BUCKET, with the condition
//     StringLike s3:prefix PREFIX* when a prefix is set, so listing works
//     only under the prefix;
//   - the object actions on arn:PARTITION:s3:::BUCKET/PREFIX*.
func Policy(bucket string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	var o PolicyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if err := validateBucket(bucket); err != nil {
		return nil, err
	}
	prefix := o.Prefix
	if err := validatePolicyPrefix(prefix); err != nil {
		return nil, err
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	part := "aws"
	if o.Partition != "" {
		p, err := partition.Resolve(o.Partition, "")
		if err != nil {
			return nil, fmt.Errorf("s3store: policy: PolicyOptions.Partition: %w", err)
		}
		part = p.ID
	}
	actions := o.Actions
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

	bucketARN := "arn:" + part + ":s3:::" + bucket
	doc := policydoc.New()
	var objActions policydoc.List
	for _, k := range actionOrder {
		if !want[k.a] {
			continue
		}
		if !k.bucket {
			objActions = append(objActions, string(k.a))
			continue
		}
		st := policydoc.Statement{Sid: "ListBucket", Effect: "Allow", Action: policydoc.List{string(k.a)}, Resource: policydoc.List{bucketARN}}
		if prefix != "" {
			st.Sid = "ListPrefix"
			st.Condition = map[string]map[string]policydoc.List{"StringLike": {"s3:prefix": {prefix + "*"}}}
		}
		doc.Statement = append(doc.Statement, st)
	}
	if len(objActions) > 0 {
		doc.Statement = append(doc.Statement, policydoc.Statement{
			Sid: "Objects", Effect: "Allow", Action: objActions, Resource: policydoc.List{bucketARN + "/" + prefix + "*"},
		})
	}
	return policydoc.Marshal(doc)
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
