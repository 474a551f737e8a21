// Package awstest wires the local AWS stand-ins into one IRSA environment
// for tests, benchmarks and irsactl sandbox: an EKS-like OIDC issuer
// (package oidc, https on a loopback port) registered as an IAM OIDC
// provider, a role whose trust policy is the one the EKS guides give
// (federated provider, sts:AssumeRoleWithWebIdentity, StringEquals on the
// issuer's :sub and :aud), the STS stand-in (package sts), the mini-IAM
// (package iam), the credentials registry every stand-in checks signatures
// with (package sigv4), a projected service-account token file, and the
// node's EKS Pod Identity endpoint (package podidentity) with an
// association of the same service account to the role and its own
// projected token (audience pods.eks.amazonaws.com).
//
// The service fronts and peers live in their own packages and are started
// by the tests that need them: pgfront (a TLS PostgreSQL front verifying
// RDS and Aurora DSQL IAM tokens before relaying to a real postgres),
// redisfront (the same for ElastiCache and a real redis-server), procs
// (the real servers), secretsmanager and s3 (in-process services speaking
// the real protocols), versitygw (a real S3 and STS peer in a private
// network namespace) and vault (HashiCorp Vault's own aws auth method,
// built from tools/vault).
//
// # Usage
//
//	func TestSomething(t *testing.T) {
//		env := awstest.Start(t) // closed when t ends
//		env.Setenv(t)           // AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_STS, AWS_REGION, ...
//		cfg, err := config.LoadDefaultConfig(ctx)
//		// cfg's credentials come from the STS stand-in through the real SDK chain.
//		_ = env.STS.Calls("AssumeRoleWithWebIdentity")
//	}
//
// A Pod Identity pod instead of an IRSA one: [Env.SetenvPodIdentity]
// (AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
// Parallel tests, which cannot change the environment, use [Env.Config];
// code that only needs signing credentials uses [Env.SessionCredentials];
// child processes get [Env.Environ]. [Env.AddAccount] adds a second AWS
// account whose roles the pod's role can assume (sts:AssumeRole) and whose
// pgfront instances admit that account's credentials only.
//
// # Errors
//
// [New] returns errors prefixed "awstest: "; [Start] fails the test with
// them. The stand-ins answer with AWS's error codes, see packages sts and
// oidc.
//
// # IAM permissions
//
// The role starts with no identity policy but [Options.RolePolicies];
// [Env.AttachPolicy] adds more. Stand-ins of other services authorise with
// Env.IAM.Authorize(roleARN, action, resource).
package awstest
