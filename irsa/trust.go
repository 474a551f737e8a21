package irsa

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
)

// TrustPolicyOptions configure TrustPolicy.
type TrustPolicyOptions struct {
	// Audience the role accepts. Default DefaultAudience.
	Audience string
}

// OIDCProviderARN returns the ARN IAM gives the OIDC provider of a cluster
// issuer, e.g. https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE, in
// partitionID (any partition the SDK knows: aws, aws-cn, aws-us-gov,
// aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc).
func OIDCProviderARN(partitionID, accountID, issuerURL string) (string, error) {
	if _, ok := partition.Lookup(partitionID); !ok {
		return "", fmt.Errorf("irsa: unknown partition %q (want one of %s)", partitionID, partition.IDs())
	}
	if !partition.ValidAccount(accountID) {
		return "", fmt.Errorf("irsa: %s", partition.AccountError("account id", accountID))
	}
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("irsa: issuer %q must be an https URL such as https://oidc.eks.REGION.amazonaws.com/id/ID (aws eks describe-cluster --query cluster.identity.oidc.issuer)", issuerURL)
	}
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s%s", partitionID, accountID, u.Host, strings.TrimSuffix(u.Path, "/")), nil
}

// TrustPolicy returns the trust policy (JSON) of an IRSA role: the cluster's
// OIDC provider may call sts:AssumeRoleWithWebIdentity for exactly the
// service account namespace/serviceAccount with the STS audience — the
// policy of the EKS guides, with the :aud condition the guides recommend.
func TrustPolicy(oidcProviderARN, namespace, serviceAccount string, optFns ...func(*TrustPolicyOptions)) ([]byte, error) {
	o := TrustPolicyOptions{Audience: DefaultAudience}
	for _, fn := range optFns {
		fn(&o)
	}
	a, err := arn.Parse(oidcProviderARN)
	if err != nil {
		return nil, fmt.Errorf("irsa: %q is not an ARN: want arn:aws:iam::ACCOUNT:oidc-provider/oidc.eks.REGION.amazonaws.com/id/ID", oidcProviderARN)
	}
	if _, ok := partition.Lookup(a.Partition); !ok {
		return nil, fmt.Errorf("irsa: OIDC provider ARN %q: unknown partition %q (want one of %s)", oidcProviderARN, a.Partition, partition.IDs())
	}
	const prefix = "oidc-provider/"
	if a.Service != "iam" || !strings.HasPrefix(a.Resource, prefix) || !partition.ValidAccount(a.AccountID) {
		return nil, fmt.Errorf("irsa: %q is not an OIDC provider ARN: want arn:%s:iam::ACCOUNT:oidc-provider/oidc.eks.REGION.amazonaws.com/id/ID", oidcProviderARN, a.Partition)
	}
	issuer := strings.TrimPrefix(a.Resource, prefix)
	if issuer == "" || strings.Contains(issuer, "://") || strings.ContainsAny(issuer, " \"") {
		return nil, fmt.Errorf("irsa: OIDC provider ARN %q: the part after oidc-provider/ must be the issuer host and path without https://", oidcProviderARN)
	}
	if err := checkK8sName("namespace", namespace, 63); err != nil {
		return nil, err
	}
	if err := checkK8sName("service account", serviceAccount, 253); err != nil {
		return nil, err
	}
	if o.Audience == "" || strings.ContainsAny(o.Audience, " \"") {
		return nil, fmt.Errorf("irsa: invalid audience %q", o.Audience)
	}
	return policydoc.Marshal(policydoc.New(policydoc.Statement{
		Effect:    "Allow",
		Principal: &policydoc.Principal{Federated: oidcProviderARN},
		Action:    policydoc.List{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]map[string]policydoc.List{"StringEquals": {
			issuer + ":sub": {"system:serviceaccount:" + namespace + ":" + serviceAccount},
			issuer + ":aud": {o.Audience},
		}},
	}))
}

// checkK8sName validates a DNS-1123 label/subdomain as Kubernetes does for
// namespaces and service accounts.
func checkK8sName(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("irsa: %s %q must be 1-%d characters", what, s, max)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || (r == '.' && max > 63)
		if !ok || ((i == 0 || i == len(s)-1) && (r == '-' || r == '.')) {
			return fmt.Errorf("irsa: %s %q must be lower-case letters, digits and '-', starting and ending with a letter or digit", what, s)
		}
	}
	return nil
}
