package secretsmanager_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A single-user rotation, step by step as a rotation function makes it:
// the pending version is readable only by its stage until AWSCURRENT moves
// to it, and every step refuses what Secrets Manager refuses.
func TestRotationStaging(t *testing.T) {
	ctx := context.Background()
	admin := clientFor(session(t, adminRole))
	name := uniq(t, "app/rot")
	created, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("one")})
	require.NoError(t, err)
	v1 := aws.ToString(created.VersionId)
	const v2 = "5b1f0c9e-3a4d-4e6f-8a7b-9c0d1e2f3a4b"

	get := func(stage string) (string, string, error) {
		in := &sm.GetSecretValueInput{SecretId: aws.String(name)}
		if stage != "" {
			in.VersionStage = aws.String(stage)
		}
		out, err := admin.GetSecretValue(ctx, in)
		if err != nil {
			return "", "", err
		}
		return aws.ToString(out.SecretString), aws.ToString(out.VersionId), nil
	}
	stages := func() map[string][]string {
		out, err := admin.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
		require.NoError(t, err)
		for _, st := range out.VersionIdsToStages {
			slices.Sort(st) // the service gives no order
		}
		return out.VersionIdsToStages
	}
	_, _, err = get("AWSPENDING")
	assert.Equal(t, "ResourceNotFoundException", apiCode(err), "no pending version yet")

	// createSecret: the new value as AWSPENDING, idempotent on its token.
	for range 2 {
		put, err := admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(v2),
			SecretString: aws.String("two"), VersionStages: []string{"AWSPENDING"}})
		require.NoError(t, err)
		assert.Equal(t, []string{"AWSPENDING"}, put.VersionStages)
	}
	_, err = admin.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(v2),
		SecretString: aws.String("other"), VersionStages: []string{"AWSPENDING"}})
	assert.Equal(t, "ResourceExistsException", apiCode(err), "a version's value cannot change")
	val, id, err := get("")
	require.NoError(t, err)
	assert.Equal(t, "one", val, "AWSCURRENT moved with the pending version")
	assert.Equal(t, v1, id)
	val, id, err = get("AWSPENDING")
	require.NoError(t, err)
	assert.Equal(t, "two", val)
	assert.Equal(t, v2, id)
	assert.Equal(t, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}}, stages())

	// finishSecret: the refusals first.
	update := func(stage string, move, remove *string) error {
		_, err := admin.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name),
			VersionStage: aws.String(stage), MoveToVersionId: move, RemoveFromVersionId: remove})
		return err
	}
	for _, tc := range []struct {
		name, code, msg string
		move, remove    *string
	}{
		{"move without naming the current holder", "InvalidParameterException", "RemoveFromVersionId", aws.String(v2), nil},
		{"remove from a version without the label", "InvalidParameterException", "not currently attached", aws.String(v2), aws.String(v2)},
		{"move to an unknown version", "ResourceNotFoundException", "VersionId", aws.String("00000000-0000-4000-8000-000000000000"), aws.String(v1)},
		{"neither move nor remove", "InvalidParameterException", "MoveToVersionId", nil, nil},
		{"remove AWSCURRENT without moving it", "InvalidParameterException", "AWSCURRENT", nil, aws.String(v1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := update("AWSCURRENT", tc.move, tc.remove)
			assert.Equal(t, tc.code, apiCode(err))
			assert.Contains(t, apiMessage(err), tc.msg)
		})
	}
	assert.Equal(t, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}}, stages(), "a refused update changed the labels")
	reader := clientFor(session(t, readerRole))
	_, err = reader.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v1)})
	assert.Equal(t, "AccessDeniedException", apiCode(err))

	// The move: AWSPREVIOUS follows the old version.
	require.NoError(t, update("AWSCURRENT", aws.String(v2), aws.String(v1)))
	assert.Equal(t, map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT", "AWSPENDING"}}, stages())
	val, id, err = get("")
	require.NoError(t, err)
	assert.Equal(t, "two", val)
	assert.Equal(t, v2, id)
	val, _, err = get("AWSPREVIOUS")
	require.NoError(t, err)
	assert.Equal(t, "one", val)
	// AWSPENDING may then be removed from the current version.
	require.NoError(t, update("AWSPENDING", nil, aws.String(v2)))
	assert.Equal(t, map[string][]string{v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}, stages())
}
