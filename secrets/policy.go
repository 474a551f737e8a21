package secrets

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
)

// PolicyOptions configure [Policy]. The zero value is the usual choice.
type PolicyOptions struct {
	// Partition of the ARNs (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b,
	// aws-iso-e, aws-iso-f, aws-eusc). Default: the region's; when set, it
	// must be the region's.
	Partition string
	// KMSKeyARNs are the customer managed KMS keys the secrets are
	// encrypted with, if any: the policy then also allows kms:Decrypt on
	// them, only when called through Secrets Manager in the region
	// (kms:ViaService). Secrets under the AWS managed key need none.
	KMSKeyARNs []string
}

// Policy returns the least-privilege IAM identity policy (JSON) a role
// needs to read the named secrets through a [Cache]: secretsmanager:
// GetSecretValue on each secret's ARN. A name is turned into
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-?????? — the
// "-??????" matches exactly the six random characters Secrets Manager
// appends, so "app/db" does not also grant "app/db-old". A name ending in
// "*" is a prefix grant and gets no suffix; a value starting with "arn:" is
// used as it is (it may name another account's secret).
func Policy(region, account string, secretNames []string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	var o PolicyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if !partition.ValidRegion(region) {
		return nil, fmt.Errorf("secrets: Policy: %s", partition.RegionError("region", region))
	}
	p, err := partition.Resolve(o.Partition, region)
	if err != nil {
		return nil, fmt.Errorf("secrets: Policy: PolicyOptions.Partition: %w", err)
	}
	if !partition.ValidAccount(account) {
		return nil, fmt.Errorf("secrets: Policy: %s", partition.AccountError("account", account))
	}
	if len(secretNames) == 0 {
		return nil, fmt.Errorf("secrets: Policy: no secret names given")
	}
	prefix := "arn:" + p.ID + ":secretsmanager:" + region + ":" + account + ":secret:"
	resources := make(policydoc.List, 0, len(secretNames))
	for _, n := range secretNames {
		switch {
		case strings.HasPrefix(n, "arn:"):
			a, err := arn.Parse(n)
			if err != nil || a.Service != "secretsmanager" || !strings.HasPrefix(a.Resource, "secret:") || len(a.Resource) == len("secret:") {
				return nil, fmt.Errorf("secrets: Policy: %q is not a Secrets Manager secret ARN (arn:%s:secretsmanager:%s:%s:secret:NAME-ABCDEF)", n, p.ID, region, account)
			}
			if a.Partition != p.ID {
				return nil, fmt.Errorf("secrets: Policy: secret ARN %q is in partition %q, the policy in %q", n, a.Partition, p.ID)
			}
			resources = append(resources, n)
		case !validSecretName(strings.TrimSuffix(n, "*")):
			return nil, fmt.Errorf("secrets: Policy: %q is not a secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)", n)
		case strings.HasSuffix(n, "*"):
			resources = append(resources, prefix+n)
		default:
			resources = append(resources, prefix+n+"-??????")
		}
	}
	doc := policydoc.New(policydoc.Statement{
		Sid:      "ReadSecrets",
		Effect:   "Allow",
		Action:   policydoc.List{"secretsmanager:GetSecretValue"},
		Resource: resources,
	})
	if len(o.KMSKeyARNs) > 0 {
		keys := make(policydoc.List, 0, len(o.KMSKeyARNs))
		for _, k := range o.KMSKeyARNs {
			a, err := arn.Parse(k)
			if err != nil || a.Service != "kms" || !strings.HasPrefix(a.Resource, "key/") || a.Partition != p.ID {
				return nil, fmt.Errorf("secrets: Policy: PolicyOptions.KMSKeyARNs: %q is not a KMS key ARN in %s (arn:%s:kms:%s:ACCOUNT:key/KEY_ID)", k, p.ID, p.ID, region)
			}
			keys = append(keys, k)
		}
		doc.Statement = append(doc.Statement, policydoc.Statement{
			Sid:      "DecryptSecrets",
			Effect:   "Allow",
			Action:   policydoc.List{"kms:Decrypt"},
			Resource: keys,
			Condition: map[string]map[string]policydoc.List{
				"StringEquals": {"kms:ViaService": {"secretsmanager." + region + "." + p.DNSSuffix}},
			},
		})
	}
	return policydoc.Marshal(doc)
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
