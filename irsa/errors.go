package irsa

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
)

// States Load and credential retrieval report; test with errors.Is.
var (
	// ErrNodeRole: in a pod without IRSA or Pod Identity; the node's
	// instance role would be used.
	ErrNodeRole = errors.New("irsa: refusing to fall back to the node's instance role")
	// ErrNoRegion: no region configured.
	ErrNoRegion = errors.New("irsa: no AWS region")
	// ErrMisconfigured: the environment is inconsistent (see the message).
	ErrMisconfigured = errors.New("irsa: credential environment misconfigured")
	// ErrTrustPolicy: STS refused AssumeRoleWithWebIdentity (AccessDenied):
	// the role's trust policy does not admit this service account.
	ErrTrustPolicy = errors.New("role trust policy does not allow this service account")
	// ErrOIDCProvider: the token's issuer is not registered as an IAM OIDC
	// provider in the role's account.
	ErrOIDCProvider = errors.New("cluster OIDC provider not registered in IAM")
	// ErrInvalidToken: STS rejected the token itself (signature, audience).
	ErrInvalidToken = errors.New("STS rejected the web identity token")
	// ErrIDPCommunication: STS could not reach the cluster's OIDC issuer.
	ErrIDPCommunication = errors.New("STS could not reach the OIDC issuer")
	// ErrSTSUnavailable: STS could not be reached or failed.
	ErrSTSUnavailable = errors.New("STS unavailable")
	// ErrCredentialsExpired: cached credentials expired and could not be
	// refreshed.
	ErrCredentialsExpired = errors.New("credentials expired and could not be refreshed")
	// ErrCredentialsEndpoint: the container credentials endpoint (EKS Pod
	// Identity at 169.254.170.23, ECS at 169.254.170.2) could not be
	// reached or failed.
	ErrCredentialsEndpoint = errors.New("container credentials endpoint unavailable")
	// ErrCredentialsRefused: the container credentials endpoint refused the
	// request (token, association or address).
	ErrCredentialsRefused = errors.New("container credentials endpoint refused the request")
)

// CredentialError explains a failure to obtain credentials for a role. It
// carries no secret: role ARN, token claims and the AWS error code only.
type CredentialError struct {
	Mode    Mode
	RoleARN string
	Subject string // the token's sub, if known
	Issuer  string // the token's iss, if known
	Code    string // AWS error code, if any
	Reason  error  // one of the Err* sentinels
	Fix     string
	Err     error // the SDK error, reachable with errors.As
}

func (e *CredentialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "irsa: %s credentials", e.Mode)
	if e.RoleARN != "" {
		fmt.Fprintf(&b, " for role %s", e.RoleARN)
	}
	fmt.Fprintf(&b, ": %v", e.Reason)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Fix != "" {
		b.WriteString(" — " + e.Fix)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap exposes Reason and Err.
func (e *CredentialError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// explainWebIdentity turns an AssumeRoleWithWebIdentity failure into a
// CredentialError naming the cause and the fix.
func explainWebIdentity(err error, roleARN string, c Claims) error {
	if err == nil {
		return nil
	}
	var tfe *TokenFileError
	if errors.As(err, &tfe) {
		return err
	}
	ce := &CredentialError{Mode: WebIdentity, RoleARN: roleARN, Subject: c.Subject, Issuer: c.Issuer, Err: err}
	issuerHost := strings.TrimPrefix(c.Issuer, "https://")
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ce.Code = ae.ErrorCode()
		msg := ae.ErrorMessage()
		switch ce.Code {
		case "AccessDenied":
			ce.Reason = ErrTrustPolicy
			provider := "arn:aws:iam::ACCOUNT:oidc-provider/" + issuerHost
			if a, _, err := ParseRoleARN(roleARN); err == nil {
				provider = "arn:" + a.Partition + ":iam::" + a.AccountID + ":oidc-provider/" + issuerHost
			}
			ce.Fix = fmt.Sprintf("the trust policy of %s must allow sts:AssumeRoleWithWebIdentity for Federated %q with StringEquals %q = %q and %q = %q (irsactl policy trust prints it)",
				roleARN, provider, issuerHost+":sub", c.Subject, issuerHost+":aud", DefaultAudience)
		case "InvalidIdentityToken":
			switch {
			case strings.Contains(msg, "No OpenIDConnect provider"):
				ce.Reason = ErrOIDCProvider
				ce.Fix = fmt.Sprintf("register the cluster's issuer %s as an IAM OIDC provider in the role's account (eksctl utils associate-iam-oidc-provider --cluster CLUSTER --approve)", c.Issuer)
			case strings.Contains(strings.ToLower(msg), "audience"):
				ce.Reason = ErrInvalidToken
				ce.Fix = fmt.Sprintf("the token audience %q must be a client ID of the IAM OIDC provider (normally %s)", c.Audience, DefaultAudience)
			default:
				ce.Reason = ErrInvalidToken
				ce.Fix = fmt.Sprintf("STS could not validate the token: check that the IAM OIDC provider belongs to this cluster (its issuer is %s), and that the role's trust policy admits sub %q and aud %q (AWS reports a trust-policy mismatch as AccessDenied; some STS-compatible servers report it this way)",
					c.Issuer, c.Subject, c.Audience)
			}
		case "ExpiredTokenException", "ExpiredToken":
			ce.Reason = ErrTokenExpired
			ce.Fix = "the projected token expired: the kubelet should refresh it; check that AWS_WEB_IDENTITY_TOKEN_FILE is the projected volume, not a copy"
		case "IDPCommunicationError":
			ce.Reason = ErrIDPCommunication
			ce.Fix = "STS could not fetch the issuer's keys; this is usually transient: retry, and check the cluster's OIDC issuer is reachable from the internet"
		case "RegionDisabledException":
			ce.Reason = ErrSTSUnavailable
			ce.Fix = "activate STS in this region (IAM account settings) or set AWS_REGION to an enabled region"
		default:
			ce.Reason = ErrSTSUnavailable
		}
		return ce
	}
	ce.Reason = ErrSTSUnavailable
	ce.Fix = "cannot reach STS: check network egress to the regional STS endpoint (sts.REGION.amazonaws.com; aws-sdk-go-v2 always calls the regional one) or the STS interface VPC endpoint"
	var rce *aws.RequestCanceledError
	if errors.As(err, &rce) {
		return err
	}
	return ce
}

// explainContainer turns a failure of the container credentials endpoint
// into a CredentialError naming the cause and the fix.
func explainContainer(err error, mode Mode, endpoint string, c Claims) error {
	if err == nil {
		return nil
	}
	var rce *aws.RequestCanceledError
	if errors.As(err, &rce) {
		return err
	}
	ce := &CredentialError{Mode: mode, Err: err}
	var status interface{ HTTPStatusCode() int }
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ce.Code = ae.ErrorCode()
	}
	code := 0
	if errors.As(err, &status) {
		code = status.HTTPStatusCode()
	}
	sa := "this pod's service account"
	assocCmd := "aws eks create-pod-identity-association --cluster CLUSTER --namespace NAMESPACE --service-account NAME --role-arn ROLE_ARN"
	if ns, name, ok := c.ServiceAccount(); ok {
		sa = "service account " + ns + "/" + name
		assocCmd = "aws eks create-pod-identity-association --cluster CLUSTER --namespace " + ns + " --service-account " + name + " --role-arn ROLE_ARN"
	}
	msg := ""
	if ae != nil {
		msg = ae.ErrorMessage()
	}
	switch {
	case code == 0 || code >= 500:
		ce.Reason = ErrCredentialsEndpoint
		if mode == PodIdentity {
			ce.Fix = fmt.Sprintf("nothing usable answers at %s: check that the eks-pod-identity-agent add-on runs on this node (kubectl -n kube-system get pods -l app.kubernetes.io/name=eks-pod-identity-agent -o wide) and that the pod can reach 169.254.170.23", endpoint)
		} else {
			ce.Fix = fmt.Sprintf("nothing usable answers at %s: check the container credentials endpoint", endpoint)
		}
	case code == 404:
		ce.Reason = ErrCredentialsRefused
		ce.Fix = fmt.Sprintf("no pod identity association for %s: %s, then recreate the pod", sa, assocCmd)
	case code == 403 && strings.Contains(msg, "address"):
		ce.Reason = ErrCredentialsRefused
		ce.Fix = fmt.Sprintf("the endpoint refuses requests sent to %s: AWS_CONTAINER_CREDENTIALS_FULL_URI must be the one the EKS webhook sets (http://169.254.170.23/v1/credentials)", endpoint)
	case strings.Contains(strings.ToLower(msg), "token") && strings.Contains(strings.ToLower(msg), "expired"):
		ce.Reason = ErrTokenExpired
		ce.Fix = "the projected EKS Pod Identity token expired: the kubelet should refresh it; check that AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is the projected volume, not a copy"
	default:
		ce.Reason = ErrCredentialsRefused
		if mode == PodIdentity {
			ce.Fix = fmt.Sprintf("the EKS Pod Identity endpoint refused the token of %s (HTTP %d): check that AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is the projected eks-pod-identity-token and that a pod identity association exists (%s)", sa, code, assocCmd)
		} else {
			ce.Fix = fmt.Sprintf("the container credentials endpoint refused the request (HTTP %d): check AWS_CONTAINER_AUTHORIZATION_TOKEN", code)
		}
	}
	return ce
}
