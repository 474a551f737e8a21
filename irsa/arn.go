package irsa

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/irsakit/irsakit/internal/partition"
)

// ParseRoleARN parses an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME,
// paths allowed) and returns it and the role name. Parsing is the SDK's
// [arn.Parse]; on top of it the partition must be one the SDK knows (aws,
// aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc),
// the account 12 digits and the name one IAM allows.
func ParseRoleARN(s string) (arn.ARN, string, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return arn.ARN{}, "", fmt.Errorf("irsa: %q is not an ARN: want arn:PARTITION:iam::ACCOUNT:role/NAME", s)
	}
	if _, ok := partition.Lookup(a.Partition); !ok {
		return arn.ARN{}, "", fmt.Errorf("irsa: ARN %q: unknown partition %q (want one of %s)", s, a.Partition, partition.IDs())
	}
	if a.Service != "iam" || a.Region != "" || !strings.HasPrefix(a.Resource, "role/") {
		return arn.ARN{}, "", fmt.Errorf("irsa: %q is not an IAM role ARN: want arn:%s:iam::ACCOUNT:role/NAME", s, a.Partition)
	}
	if !partition.ValidAccount(a.AccountID) {
		return arn.ARN{}, "", fmt.Errorf("irsa: role ARN %q: account %q must be 12 digits", s, a.AccountID)
	}
	name := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
	if name == "" || len(name) > 64 || !validChars(name, "+=,.@_-") {
		return arn.ARN{}, "", fmt.Errorf("irsa: role ARN %q: role name %q must be 1-64 characters of letters, digits and +=,.@_-", s, name)
	}
	return a, name, nil
}

func validChars(s, extra string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(extra, r):
		default:
			return false
		}
	}
	return true
}
