// Package oidc is the OpenID Connect issuer of the AWS stand-ins: it plays an
// EKS cluster's service-account issuer (oidc.eks.REGION.amazonaws.com/id/ID).
//
// An [Issuer] serves the discovery document at
// ISSUER/.well-known/openid-configuration and its JSON Web Key Set at
// ISSUER/keys, signs service-account tokens with RS256 (key id in the JWS
// header, as the Kubernetes API server does), writes them to a file the way
// the kubelet writes a projected service-account token volume, and rotates
// tokens and signing keys on demand. The STS stand-in
// (internal/awstest/sts) fetches the discovery document and JWKS over
// HTTP(S) to verify the tokens, exactly as AWS STS does.
//
// # Usage
//
//	iss, err := oidc.New(func(o *oidc.Options) { o.TLS = true })
//	if err != nil { ... }
//	defer iss.Close()
//	tok, err := iss.Mint(oidc.ServiceAccountSubject("mcp", "mcp-server"))
//	bad, err := iss.Mint(sub, oidc.WithAudience("other"))   // wrong audience
//	bad, err = iss.Mint(sub, oidc.Expired())                 // expired
//	bad, err = iss.Mint(sub, oidc.SignedByForeignKey())      // not in the JWKS
//	_, err = iss.WriteTokenFile(path, sub)                    // 0600, atomic
//	_, err = iss.RotateTokenFile(path)                        // new token, same claims
//
// An issuer that serves TLS (the AWS way: IAM only registers https issuers)
// generates a self-signed certificate for its listener's address unless one
// is given; [Issuer.Client] and [Issuer.CertPool] trust it and
// [Issuer.Thumbprint] is the SHA-1 thumbprint IAM registers for the provider.
//
// # Errors
//
// Constructors and file writers return errors prefixed "oidc: ". HTTP
// endpoints answer 404 for unknown paths, 405 for methods other than GET and
// HEAD, and 503 while [Issuer.SetFailing] is on.
//
// # IAM permissions
//
// None: this is a test stand-in. To federate into a role, register
// [Issuer.URL] with the mini-IAM (iam.AddOIDCProvider) with the client id
// sts.amazonaws.com and trust the provider ARN in the role's trust policy.
//
// An Issuer is safe for concurrent use.
package oidc
