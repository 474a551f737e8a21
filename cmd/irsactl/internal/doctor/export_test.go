package doctor

import "time"

// Overall exposes the status rule to the tests.
func Overall(r Report) string { return r.overall() }

// BeforeAssume runs f between the STS check and sts:AssumeRole.
func BeforeAssume(f func()) func(*Options) { return func(o *Options) { o.beforeAssume = f } }

// ExplainAssume exposes the mapping of AssumeRole failures.
func ExplainAssume(err error, roleARN, base string) (Cause, string, string) {
	return explainAssume(err, roleARN, base, "https://sts.example", time.Second)
}

// Assumed exposes the report of a role assumed as id.
var Assumed = assumed

// RoleOfIdentity exposes the role ARN read from an identity ARN.
var RoleOfIdentity = roleOfIdentity
