package secrets

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Policy returns the least-privilege IAM identity policy (JSON) a role
// needs to read the named secrets through a [Cache]: secretsmanager:
// GetSecretValue on each secret's ARN. A name is turned into
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-?????? — the
// "-??????" matches exactly the six random characters Secrets Manager
// appends, so "app/db" does not also grant "app/db-old". A name ending in
// "*" is a prefix grant and gets no suffix; a value starting with "arn:" is
// used as it is.
//
// Secrets encrypted with a customer-managed KMS key also need kms:Decrypt
// on that key, which this policy does not include.
func Policy(region, account string, secretNames ...string) (string, error) {
	if !validRegion(region) {
		return "", fmt.Errorf("secrets: Policy: region %q is not an AWS region name like us-east-1", region)
	}
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return "", fmt.Errorf("secrets: Policy: account %q is not a 12-digit AWS account id", account)
	}
	if len(secretNames) == 0 {
		return "", fmt.Errorf("secrets: Policy: no secret names given")
	}
	prefix := "arn:" + partition(region) + ":secretsmanager:" + region + ":" + account + ":secret:"
	resources := make([]string, 0, len(secretNames))
	for _, n := range secretNames {
		switch {
		case strings.HasPrefix(n, "arn:"):
			if !strings.HasPrefix(n, "arn:aws") || !strings.Contains(n, ":secretsmanager:") || !strings.Contains(n, ":secret:") {
				return "", fmt.Errorf("secrets: Policy: %q is not a Secrets Manager secret ARN", n)
			}
			resources = append(resources, n)
		case !validSecretName(strings.TrimSuffix(n, "*")):
			return "", fmt.Errorf("secrets: Policy: %q is not a secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)", n)
		case strings.HasSuffix(n, "*"):
			resources = append(resources, prefix+n)
		default:
			resources = append(resources, prefix+n+"-??????")
		}
	}
	type statement struct {
		Sid      string
		Effect   string
		Action   []string
		Resource []string
	}
	doc := struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{{"ReadSecrets", "Allow", []string{"secretsmanager:GetSecretValue"}, resources}}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", fmt.Errorf("secrets: Policy: %w", err)
	}
	return string(b), nil
}

func validRegion(r string) bool {
	if len(r) < 4 || len(r) > 32 || strings.Count(r, "-") < 2 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validSecretName(n string) bool {
	if n == "" || len(n) > 512 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("/_+=.@-", c) >= 0) {
			return false
		}
	}
	return true
}

func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
