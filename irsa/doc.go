// Package irsa finds out how this process gets AWS credentials — IRSA web
// identity, EKS Pod Identity, environment keys, a shared profile, container
// credentials or the instance role — exactly as the AWS SDK's default
// credential chain does, and builds one cached credential source and
// aws.Config from it, shared by every AWS client of the process.
//
// # Usage
//
//	sess, err := irsa.Load(ctx)
//	if err != nil {
//		log.Fatal(err) // names the cause and the fix
//	}
//	s3c := s3.NewFromConfig(sess.Config())
//
// Load logs one line: "Using IRSA authentication for AWS services" (mode,
// role ARN, region) with IRSA, "Using EKS Pod Identity for AWS services"
// (endpoint, service account, region) with Pod Identity, and otherwise a
// line that says which source it is and that it is not IRSA ("Using local
// development credentials ..." for environment keys and profiles outside a
// pod). [Detect] reports the same decision with the misconfigurations it
// can see; [CheckTokenFile] and [ParseTokenClaims] look at a projected
// token; [TrustPolicy] writes the role trust policy a service account
// needs.
//
// # Detection order
//
// The order is aws-sdk-go-v2's (config.LoadDefaultConfig):
//
//  1. a profile chosen in code ([Options].Profile);
//  2. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;
//  3. AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (IRSA);
//  4. the profile named by AWS_PROFILE, else AWS_DEFAULT_PROFILE, else
//     "default", in AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE (or
//     ~/.aws): its source_profile, keys, credential_source,
//     web_identity_token_file, sso, login or credential_process, then its
//     role_arn;
//  5. AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS), then
//     AWS_CONTAINER_CREDENTIALS_FULL_URI with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity);
//  6. the instance metadata service: in a pod, the node's role.
//
// So a stray AWS_PROFILE does not hide IRSA, IRSA wins over Pod Identity
// when both are configured (Detect reports a [Problem] saying so), a
// profile named by AWS_PROFILE that does not exist makes the SDK — and Load
// — fail, and one named by AWS_DEFAULT_PROFILE is ignored.
// [Environment].Sources is the chain of aws.CredentialSource values the
// SDK records for its provider; the package's tests compare Detect and Load
// with config.LoadDefaultConfig on more than fifty environments in the
// same run. Detect reads the shared config files (with the SDK's own
// loader) but no token, and calls no AWS service.
//
// In a pod (KUBERNETES_SERVICE_HOST set), whenever the chain would end on
// the instance metadata service — no IRSA or Pod Identity, a profile
// without credentials, a profile whose credential_source is
// Ec2InstanceMetadata — Load fails with [ErrNodeRole] instead of silently
// using the node's instance role, unless [Options].AllowNodeRole is set.
//
// # EKS Pod Identity
//
// With AWS_CONTAINER_CREDENTIALS_FULL_URI (http://169.254.170.23/v1/credentials)
// and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, Load checks the projected
// token like the IRSA one — missing, unreadable (set fsGroup), empty,
// malformed, expired, or not for the audience pods.eks.amazonaws.com — and
// fetches credentials from the node's endpoint as the SDK does, re-reading
// the token on every refresh. [Session.RoleARN] is empty: the association's
// role is known only to EKS.
//
// # Cross-account roles
//
// [Session.AssumeRole] chains sts:AssumeRole on a session: a pod's IRSA or
// Pod Identity role reaches a role of another account, with its own
// credential cache (one STS call per credential lifetime, the cached
// credentials served through an STS outage), an ExternalID, a source
// identity, session tags and transitive tag keys. AWS limits a role
// assumed with another role's credentials to one-hour sessions; a longer
// Duration is refused before any call ([ErrRoleChainLimit]). The chained
// session's Mode is [AssumedRole], its RoleARN the target role, its Base
// the session it was made from, its Config usable by every service package
// as it is. [RoleTrustPolicy] writes the target role's trust policy.
//
//	base, err := irsa.Load(ctx)
//	ledger, err := base.AssumeRole("arn:aws:iam::444455556666:role/ledger-reader",
//		func(o *irsa.AssumeRoleOptions) { o.ExternalID = "ledger-7f3a" })
//	pool, err := rdsauth.NewPool(ctx, dsn, ledger.Config())
//
// # Fleet start and retries
//
// A rollout that starts thousands of pods at once meets STS's per-account
// rate limit (Throttling: Rate exceeded). While a session has no valid
// credentials, a fetch retries throttling for up to 10 attempts, each
// after a delay drawn from [w/10, w] with w growing from 10 s to 30 s, and
// other retryable failures with exponential full-jitter back-off from 1 s
// to 20 s: the fleet's retries spread over the time STS needs instead of
// returning together, and the SDK's client-side retry quota does not make
// pods give up. Nothing delays the first attempt unless
// Options.StartJitter is set: then each session's first fetch waits a
// random time below it, which for a fleet that starts at once (about pods ÷
// rate, e.g. 10 s for 2,000 pods at 200 requests/s) lets nearly every pod
// in with one STS call. A refresh while valid credentials are cached
// retries as the SDK does (3 attempts) and falls back on the cached
// credentials; while STS keeps failing, the next refresh comes 10 s later,
// doubling up to 2 minutes. A retryer in Options.ConfigOptions
// (config.WithRetryer) replaces this policy; a maximum of attempts
// (config.WithRetryMaxAttempts, AWS_MAX_ATTEMPTS) caps it.
//
// # Statistics and logs
//
// [Session.Stats] reports fetches, early refreshes, failures, the last
// refresh and failure times, the last error's class ("throttled",
// "access-denied", "credentials", "network", "timeout", "not-found",
// "other" — the labels of the project's other caches), the number of
// failed refreshes answered with cached credentials, and the credentials'
// expiry. Each failed fetch is logged at Warn with its class and the role
// ARN, the first success after failures at Info ("irsa: credential refresh
// works again"); no line holds a key, a session token or a web identity
// token.
//
// # Partitions
//
// Every partition the AWS SDK knows is accepted wherever a role ARN, an OIDC provider ARN or a region appears:
// aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
// aws-eusc. [ParseRoleARN], [OIDCProviderARN], [TrustPolicy] and [RoleTrustPolicy]
// take the partition from the ARN they are given.
//
// # Errors
//
// Token-file problems are [*TokenFileError] values (errors.Is with
// [ErrTokenMissing], [ErrTokenUnreadable], [ErrTokenEmpty],
// [ErrTokenMalformed], [ErrTokenExpired], [ErrTokenAudience]); their Mode
// says which token. An environment the SDK cannot load is
// [ErrMisconfigured]. STS refusals surface from credential retrieval — that
// is, from the first AWS call — as [*CredentialError] (errors.Is with
// [ErrTrustPolicy], [ErrOIDCProvider], [ErrInvalidToken],
// [ErrIDPCommunication], [ErrSTSUnavailable]); Pod Identity and ECS
// endpoint failures as [*CredentialError] with [ErrCredentialsEndpoint] or
// [ErrCredentialsRefused]; AssumeRole refusals as [*CredentialError] with
// [ErrAssumeRoleDenied], [ErrRoleChainLimit] or [ErrBaseCredentials] (the
// base session's own error stays in the chain); the SDK's error stays
// reachable with errors.As.
// When STS or the Pod Identity endpoint is down during a refresh, the
// cached credentials are served until they expire, then
// [ErrCredentialsExpired] names the source and the fix. No error or log
// line contains a token or key.
//
// # IAM permissions
//
// The IRSA role needs a trust policy for the cluster's OIDC provider (see
// [TrustPolicy]); a Pod Identity role trusts the service principal
// pods.eks.amazonaws.com (sts:AssumeRole, sts:TagSession).
// [Session.Identity] (sts:GetCallerIdentity) needs no permission. For
// [Session.AssumeRole] the base role needs an identity policy allowing
// sts:AssumeRole on the target role (with sts:TagSession for session tags,
// sts:SetSourceIdentity for a source identity), and the target role a
// trust policy naming the base role ([RoleTrustPolicy]).
package irsa
