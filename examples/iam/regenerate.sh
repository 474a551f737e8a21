#!/usr/bin/env bash
# Regenerates the policy templates of this directory with irsactl, the same
# code that prints them for your values (a test checks they are equal).
# Example values: account 111122223333, region us-east-1, the cluster's OIDC
# issuer id EXAMPLED539D4633E53DE1B71EXAMPLE; run the same commands with yours.
set -euo pipefail
cd "$(dirname "$0")"
IRSACTL=${IRSACTL:-irsactl}
"$IRSACTL" policy trust --account 111122223333 --issuer https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE --namespace mcp --service-account mcp-server > trust-policy.json
"$IRSACTL" policy rds --region us-east-1 --account 111122223333 --resource-id cluster-ABCDEFGHIJKL01234567890ABC --db-user mcp_app > rds-iam-policy.json
"$IRSACTL" policy elasticache --region us-east-1 --account 111122223333 --cache mcp-cache --cache-user mcp-app > elasticache-iam-policy.json
"$IRSACTL" policy s3 --bucket mcp-data/notes/ > s3-iam-policy.json
"$IRSACTL" policy secrets --region us-east-1 --account 111122223333 --secret mcp/api-key > secrets-iam-policy.json
"$IRSACTL" policy combined --region us-east-1 --account 111122223333 --resource-id cluster-ABCDEFGHIJKL01234567890ABC --db-user mcp_app --cache mcp-cache --cache-user mcp-app --bucket mcp-data/notes/ --secret mcp/api-key > combined-iam-policy.json
