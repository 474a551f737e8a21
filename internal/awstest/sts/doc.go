// Package sts is the AWS Security Token Service stand-in: an HTTP server on
// a loopback port speaking STS's Query protocol (form-encoded POST or GET,
// Action=...&Version=2011-06-15, XML answers in the
// https://sts.amazonaws.com/doc/2011-06-15/ namespace, errors as
// ErrorResponse/Error/{Type,Code,Message} with AWS's HTTP statuses), so the
// real aws-sdk-go-v2 STS client, the web-identity credential provider and
// the SDK's default credential chain talk to it unchanged (point them at it
// with AWS_ENDPOINT_URL_STS or sts.Options.BaseEndpoint).
//
// It verifies what AWS verifies:
//
//   - AssumeRoleWithWebIdentity (unsigned, as in AWS): RoleArn,
//     RoleSessionName ([\w+=,.@-], 2 to 64 characters) and DurationSeconds
//     (900 to 43200, default 3600, and at most the role's
//     MaxSessionDuration) or ValidationError; the token must be a JWS with an
//     asymmetric algorithm the issuer advertises (alg none and HS256 are
//     InvalidIdentityToken); its iss must be an OIDC provider registered in
//     the mini-IAM (else InvalidIdentityToken "No OpenIDConnect provider found
//     in your account for ISS"); the provider's discovery document and JWKS
//     are fetched over HTTP(S) and cached (unreachable or failing:
//     IDPCommunicationError); the signature must verify with the key named by
//     kid (unknown kid, foreign key: InvalidIdentityToken); aud must be one of
//     the provider's client ids (InvalidIdentityToken "Incorrect token
//     audience"); exp in the past is ExpiredTokenException, nbf in the future
//     InvalidIdentityToken; the role must exist and its trust policy must
//     allow the provider with the token's sub and aud (else AccessDenied "Not
//     authorized to perform sts:AssumeRoleWithWebIdentity"). Credentials are
//     issued into the sigv4 registry for min(DurationSeconds, CredentialTTL).
//   - AssumeRole: SigV4-signed for service sts and the server's region with
//     credentials the registry issued, unexpired (else the verifier's code);
//     RoleArn, RoleSessionName, DurationSeconds, ExternalId (2 to 1224
//     characters of [\w+=,.@:/-]), SourceIdentity (2 to 64 of [\w+=,.@-]),
//     up to 50 Tags and TransitiveTagKeys checked as STS does
//     (ValidationError; tag keys repeated regardless of case are a
//     ValidationError); a caller holding role credentials (role chaining)
//     asking for more than an hour gets ValidationError "The requested
//     DurationSeconds exceeds the 1 hour session limit for roles assumed by
//     role chaining."; the caller's identity policy (in the IAM of its
//     account) must allow sts:AssumeRole on the role, and the role (in the
//     IAM of its own account, see [Server.AddAccount]) must exist and its
//     trust policy name the caller in Principal.AWS (role ARN, session ARN,
//     account or "*") with every condition holding (sts:ExternalId,
//     sts:SourceIdentity, sts:RoleSessionName, aws:RequestTag/KEY,
//     aws:TagKeys); with Tags both must also allow sts:TagSession, with a
//     SourceIdentity sts:SetSourceIdentity — else AccessDenied "User:
//     CALLER is not authorized to perform: ACTION on resource: ROLE", the
//     same text whatever the reason, as in AWS. The stand-in asks for the
//     identity-policy Allow even when the trust policy names the caller's
//     role in the same account, where AWS would not. Session policies and
//     MFA are refused (ValidationError: not supported). Credentials are
//     issued into the registry for the role, in the role's account.
//   - GetCallerIdentity: the request must be SigV4-signed for service sts and
//     the server's region with credentials the registry issued and that have
//     not expired; failures keep the verifier's code (MissingAuthenticationToken,
//     InvalidClientTokenId, ExpiredToken, SignatureDoesNotMatch, ...).
//   - Any other Action is InvalidAction; a missing Action MissingAction.
//
// With [Options.RateLimit] (or [Server.SetRateLimit]) each account has a
// token bucket of RateBurst requests refilled at RateLimit per second; a
// request that finds it empty is answered Throttling "Rate exceeded" (HTTP
// 400), which the SDK's retryers treat as throttling. AssumeRole and
// GetCallerIdentity count against the signing credentials' account,
// AssumeRoleWithWebIdentity against the role's.
//
// Tests steer it: [Server.Calls] and [Server.CallLog] count and record
// requests (with their arrival time); [Server.FailNext],
// [Server.ThrottleNext], [Server.SetDelay] and [Server.SetDown] inject
// faults; [Server.SetCredentialTTL] sets the lifetime of issued
// credentials; [Server.AddAccount] serves a second account's roles.
//
// # Usage
//
//	reg := sigv4.NewRegistry(nil)
//	im := iam.New(sigv4.DefaultAccount)
//	srv, err := sts.New(reg, im, func(o *sts.Options) { o.HTTPClient = issuer.Client() })
//	if err != nil { ... }
//	defer srv.Close()
//	client := awssts.NewFromConfig(cfg, func(o *awssts.Options) { o.BaseEndpoint = aws.String(srv.URL()) })
//
// # Errors
//
// The SDK surfaces the answers as its typed errors
// (types.InvalidIdentityTokenException, types.ExpiredTokenException,
// types.IDPCommunicationErrorException) or as a smithy.APIError whose
// ErrorCode is the code (AccessDenied, ValidationError, InvalidClientTokenId,
// ...). While [Server.SetDown] is on, it gets transport errors instead.
//
// # IAM permissions
//
// AssumeRoleWithWebIdentity is authorised by the role's trust policy alone,
// AssumeRole by the caller's identity policy and the role's trust policy,
// GetCallerIdentity needs no permission, as in AWS.
//
// A Server is safe for concurrent use.
package sts
