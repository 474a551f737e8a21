// Package vaultauth logs in to HashiCorp Vault's aws auth method (iam auth
// type) with the credentials of an AWS session, typically a pod's IRSA
// role, and keeps the Vault token valid.
//
// The login is a SigV4-signed sts:GetCallerIdentity request that Vault
// forwards to STS to learn who signed it: POST to the STS endpoint, body
// Action=GetCallerIdentity&Version=2011-06-15, with the optional
// X-Vault-AWS-IAM-Server-ID header inside the signature. [BuildLogin] signs
// it with the SDK's v4 signer and the session's credentials provider, for
// the STS endpoint the session's own STS client uses: the region's
// endpoint (every partition), or whatever AWS_ENDPOINT_URL_STS,
// AWS_ENDPOINT_URL, the config's BaseEndpoint, FIPS or dual-stack settings
// choose. (Vault's own Go helper builds on the retired aws-sdk-go v1 and
// signs for sts.amazonaws.com whatever AWS_ENDPOINT_URL_STS says.) The
// package talks to Vault over net/http; it does not depend on Vault's
// client.
//
// # Usage
//
// A [TokenSource] logs in on first use and keeps a token valid while the
// program runs: it renews the token (auth/token/renew-self) between half
// and three quarters of its lease, and logs in again when the token cannot
// be renewed (a batch token, a revoked token) or Vault caps the renewal
// near the token's max TTL. Ask it for the token before each use; that is
// a memory read while the token is fresh:
//
//	sess, err := irsa.Load(ctx)
//	...
//	src, err := vaultauth.NewTokenSource("https://vault.example.com:8200", "orders-api", sess.Config(),
//		func(o *vaultauth.Options) { o.ServerID = "vault.example.com" })
//	...
//	defer src.Close()
//
//	tok, err := src.Token(ctx)
//	...
//	req.Header.Set("X-Vault-Token", tok.Value())
//
// When Vault answers a request made with the token "permission denied"
// (someone revoked it), call [TokenSource.Invalidate] and the next Token
// logs in again. A refresh that fails while the token is still valid keeps
// it being served and is retried in the background; [TokenSource.Stats]
// counts refreshes, failures and such answers for operators. [Options.Mount] names a mount other than "aws",
// [Options.Namespace] a Vault Enterprise namespace.
//
// [Login] performs a single login and returns the [Token]. To send the
// login with another Vault client, [BuildLogin] returns the request:
//
//	req, err := vaultauth.BuildLogin(ctx, sess.Config(), "orders-api")
//	secret, err := client.Logical().WriteWithContext(ctx, req.Path(), req.Data())
//
// A [Token] and a [LoginRequest] (a replayable credential for 15 minutes)
// print redacted with every fmt verb and with slog; [Token.Value] and
// [LoginRequest.Data] are the only ways to their content. A Vault address
// must be https, except on the loopback interface (a Vault agent) or with
// [Options.AllowHTTP].
//
// A Vault token's lease does not depend on the AWS credentials' expiry:
// Vault checks the credentials only at login, so renewals need no AWS
// credentials and an STS outage does not affect a token already issued.
//
// # Errors
//
// A login or renewal Vault refuses is a *[VaultError] carrying the HTTP
// status and Vault's messages, which name the cause, for example:
//
//	vaultauth: Vault refused login at auth/aws/login (HTTP 400 Bad Request): error validating X-Vault-AWS-IAM-Server-ID header: expected "vault.example.com" but got "vault"
//	vaultauth: Vault refused login at auth/aws/login (HTTP 400 Bad Request): entry for role orders not found
//	vaultauth: Vault refused login at auth/aws/login (HTTP 400 Bad Request): IAM Principal "arn:aws:sts::111122223333:assumed-role/orders-api/..." does not belong to the role "payments"
//	vaultauth: Vault refused login at auth/aws/login (HTTP 400 Bad Request): error making upstream request: received error code 403 from STS: ...SignatureDoesNotMatch...
//
// The last one usually means Vault sends the request to an STS endpoint
// other than the one it was signed for (see below). [IsPermissionDenied]
// reports a 403 (an unknown, expired or revoked token).
//
// Bad input fails before anything is sent, with sentinels to test with
// errors.Is: [ErrInvalidAddress], [ErrInsecureTransport], [ErrInvalidRole],
// [ErrInvalidOptions], [ErrNoCredentials], [ErrNoRegion],
// [ErrInvalidRegion], [ErrInvalidEndpoint]. [ErrCredentialsExpired] means
// the credentials provider returned expired credentials; the provider's
// own errors (smithy.APIError from STS) stay reachable with errors.As.
// [ErrUnexpectedResponse] means the address answered, but not as Vault
// does; [ErrClosed] follows [TokenSource.Close]. No error or log record
// contains a token, an accessor or a signed request.
//
// # IAM permissions
//
// The pod's role needs no IAM permission: sts:GetCallerIdentity is allowed
// to every principal. The Vault side names the role:
//
//	vault auth enable aws
//	vault write auth/aws/config/client \
//		iam_server_id_header_value=vault.example.com \
//		sts_endpoint=https://sts.eu-west-1.amazonaws.com sts_region=eu-west-1
//	vault write auth/aws/role/orders-api auth_type=iam \
//		bound_iam_principal_arn=arn:aws:iam::111122223333:role/orders-api \
//		token_policies=orders-read token_ttl=1h token_max_ttl=24h
//
// Vault forwards the signed request to its sts_endpoint (default
// https://sts.amazonaws.com) with the Host it was signed for, and STS
// accepts it only if it was signed for that endpoint's region: set
// sts_endpoint and sts_region to the endpoint and region the pods sign for
// (their AWS_REGION or [Options.Region]; [LoginRequest.STSURL] and
// [LoginRequest.Region] show them), or set use_sts_region_from_client=true
// to let Vault follow each client's region.
// iam_server_id_header_value, when set, must equal [Options.ServerID].
//
// bound_iam_principal_arn is the role's ARN without its path (Vault
// compares assumed-role sessions by arn:PARTITION:iam::ACCOUNT:role/NAME).
// With resolve_aws_unique_ids=true (Vault's default) Vault resolves it to
// the role's unique id when the role is written, which needs iam:GetRole
// for Vault's own AWS credentials; wildcard ARNs need it at login.
package vaultauth
