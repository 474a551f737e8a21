package irsa

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// TrustPolicyOptions configure TrustPolicy.
type TrustPolicyOptions struct {
	// Audience the role accepts. Default DefaultAudience.
	Audience string
}

// OIDCProviderARN returns the ARN IAM gives the OIDC provider of a cluster
// issuer, e.g. https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE.
func OIDCProviderARN(partition, accountID, issuerURL string) (string, error) {
	if !partitions[partition] {
		return "", fmt.Errorf("irsa: unknown partition %q (want aws, aws-cn or aws-us-gov)", partition)
	}
	if !isAccountID(accountID) {
		return "", fmt.Errorf("irsa: account id %q must be 12 digits", accountID)
	}
	u, err := url.Parse(issuerURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("irsa: issuer %q must be an https URL such as https://oidc.eks.REGION.amazonaws.com/id/ID (aws eks describe-cluster --query cluster.identity.oidc.issuer)", issuerURL)
	}
	return fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s%s", partition, accountID, u.Host, strings.TrimSuffix(u.Path, "/")), nil
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
	a, err := ParseARN(oidcProviderARN)
	if err != nil {
		return nil, err
	}
	const prefix = "oidc-provider/"
	if a.Service != "iam" || !strings.HasPrefix(a.Resource, prefix) || a.AccountID == "" {
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
	type principal struct {
		Federated string `json:"Federated"`
	}
	type statement struct {
		Effect    string                       `json:"Effect"`
		Principal principal                    `json:"Principal"`
		Action    string                       `json:"Action"`
		Condition map[string]map[string]string `json:"Condition"`
	}
	doc := struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{
		Version: "2012-10-17",
		Statement: []statement{{
			Effect:    "Allow",
			Principal: principal{Federated: oidcProviderARN},
			Action:    "sts:AssumeRoleWithWebIdentity",
			Condition: map[string]map[string]string{"StringEquals": {
				issuer + ":sub": "system:serviceaccount:" + namespace + ":" + serviceAccount,
				issuer + ":aud": o.Audience,
			}},
		}},
	}
	return json.MarshalIndent(doc, "", "  ")
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
