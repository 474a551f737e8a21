package oidc

// DeriveURL exposes the issuer URL derivation to the tests.
var DeriveURL = deriveURL
