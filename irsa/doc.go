// Package irsa finds out how this process gets AWS credentials — IRSA web
// identity, EKS Pod Identity, environment keys, a shared profile, or the
// instance role — and builds one cached credential source and aws.Config
// from it, shared by every AWS client of the process.
//
// # Usage
//
//	sess, err := irsa.Load(ctx)
//	if err != nil {
//		log.Fatal(err) // names the cause and the fix
//	}
//	s3c := s3.NewFromConfig(sess.Config())
//
// Load logs one line, "Using IRSA authentication for AWS services", with the
// mode, role ARN and region. [Detect] reports the same decision without any
// I/O, with the misconfigurations it can see; [CheckTokenFile] and
// [ParseTokenClaims] look at the projected token; [TrustPolicy] writes the
// role trust policy a service account needs.
//
// In a pod (KUBERNETES_SERVICE_HOST set) without IRSA or Pod Identity, Load
// fails with [ErrNodeRole] instead of silently using the node's instance
// role, unless [Options].AllowNodeRole is set.
//
// # Errors
//
// Token-file problems are [*TokenFileError] values (errors.Is with
// [ErrTokenMissing], [ErrTokenUnreadable], [ErrTokenEmpty],
// [ErrTokenMalformed], [ErrTokenExpired], [ErrTokenAudience]). STS refusals
// surface from credential retrieval — that is, from the first AWS call — as
// [*CredentialError] (errors.Is with [ErrTrustPolicy], [ErrOIDCProvider],
// [ErrInvalidToken], [ErrIDPCommunication], [ErrSTSUnavailable]); the SDK's
// error stays reachable with errors.As. When STS is down during a refresh,
// the cached credentials are served until they expire, then
// [ErrCredentialsExpired] is returned. No error or log line contains a
// token or key.
//
// # IAM permissions
//
// The role needs a trust policy for the cluster's OIDC provider (see
// [TrustPolicy]); [Session.Identity] (sts:GetCallerIdentity) needs no
// permission.
package irsa
