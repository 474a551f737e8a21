package main

import (
	"errors"
	"strings"

	"github.com/irsakit/irsakit/irsa"
)

// cliMessage is err's message for a person at a shell. The library's
// errors for these states name the Go option that changes them; the
// command line says what to do instead.
func cliMessage(err error) string {
	switch {
	case errors.Is(err, irsa.ErrNodeRole):
		return "refusing the node's instance role: this pod has neither IRSA (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE) nor Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI) in its environment; " +
			"annotate its service account with eks.amazonaws.com/role-arn and recreate the pod (kubectl rollout restart); irsactl doctor explains what it sees"
	case errors.Is(err, irsa.ErrNoRegion):
		return "no AWS region: set AWS_REGION (the EKS pod identity webhook sets it in pods) or pass --region"
	}
	return cliNames.Replace(err.Error())
}

// cliNames are the Go options the library's messages name, and the flags
// that set the same thing.
var cliNames = strings.NewReplacer(
	"Options.Region", "--region",
	"Options.ExpiresIn", "--expires",
)
