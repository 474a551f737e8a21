package irsa

import (
	"fmt"
	"strings"
)

// ARN is a parsed Amazon Resource Name.
type ARN struct {
	Partition string // aws, aws-cn or aws-us-gov
	Service   string
	Region    string
	AccountID string
	Resource  string
}

// String reassembles the ARN.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.AccountID + ":" + a.Resource
}

var partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true}

// ParseARN parses s as an ARN in the aws, aws-cn or aws-us-gov partition.
func ParseARN(s string) (ARN, error) {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" {
		return ARN{}, fmt.Errorf("irsa: %q is not an ARN: want arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE", s)
	}
	a := ARN{Partition: p[1], Service: p[2], Region: p[3], AccountID: p[4], Resource: p[5]}
	if !partitions[a.Partition] {
		return ARN{}, fmt.Errorf("irsa: ARN %q: unknown partition %q (want aws, aws-cn or aws-us-gov)", s, a.Partition)
	}
	if a.Service == "" || a.Resource == "" {
		return ARN{}, fmt.Errorf("irsa: ARN %q: service and resource must not be empty", s)
	}
	if a.AccountID != "" && !isAccountID(a.AccountID) {
		return ARN{}, fmt.Errorf("irsa: ARN %q: account %q must be 12 digits", s, a.AccountID)
	}
	return a, nil
}

// ParseRoleARN parses an IAM role ARN (arn:aws:iam::123456789012:role/NAME,
// paths allowed) and returns the ARN and the role name.
func ParseRoleARN(s string) (ARN, string, error) {
	a, err := ParseARN(s)
	if err != nil {
		return ARN{}, "", err
	}
	if a.Service != "iam" || a.Region != "" || !strings.HasPrefix(a.Resource, "role/") {
		return ARN{}, "", fmt.Errorf("irsa: %q is not an IAM role ARN: want arn:%s:iam::ACCOUNT:role/NAME", s, a.Partition)
	}
	if a.AccountID == "" {
		return ARN{}, "", fmt.Errorf("irsa: role ARN %q has no account id", s)
	}
	name := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
	if name == "" || len(name) > 64 || !validChars(name, "+=,.@_-") {
		return ARN{}, "", fmt.Errorf("irsa: role ARN %q: role name %q must be 1-64 characters of letters, digits and +=,.@_-", s, name)
	}
	return a, name, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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
