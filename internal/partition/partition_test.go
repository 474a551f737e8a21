package partition_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/partition"
)

func TestForRegion(t *testing.T) {
	tests := []struct {
		region, want string
	}{
		{"us-east-1", "aws"},
		{"eu-central-2", "aws"},
		{"ap-southeast-7", "aws"},
		{"mx-central-1", "aws"},
		{"us-west-9", "aws"}, // not launched yet: the pattern admits it
		{"cn-north-1", "aws-cn"},
		{"cn-northwest-1", "aws-cn"},
		{"us-gov-west-1", "aws-us-gov"},
		{"us-gov-east-1", "aws-us-gov"},
		{"us-iso-east-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-south-1", "aws-iso-f"},
		{"eusc-de-east-1", "aws-eusc"},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			p, ok := partition.ForRegion(tt.region)
			require.True(t, ok)
			assert.Equal(t, tt.want, p.ID)
			assert.True(t, partition.ValidRegion(tt.region))
		})
	}
	for _, bad := range []string{"", "local", "us-east", "US-EAST-1", "us_east-1", "aws-global", "xx-east-1",
		"us-east-1a", "eusc-fr-east-1", "us-gov-west", "-us-east-1", "us-east-1 ", "cn-north"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			_, ok := partition.ForRegion(bad)
			assert.False(t, ok)
			assert.False(t, partition.ValidRegion(bad))
		})
	}
}

func TestResolve(t *testing.T) {
	p, err := partition.Resolve("", "us-isob-east-1")
	require.NoError(t, err)
	assert.Equal(t, "aws-iso-b", p.ID)

	p, err = partition.Resolve("aws-eusc", "")
	require.NoError(t, err)
	assert.Equal(t, "amazonaws.eu", p.DNSSuffix)

	_, err = partition.Resolve("aws-cn", "us-east-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "region us-east-1 is in partition aws, not aws-cn")

	_, err = partition.Resolve("aws-moon", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aws-iso-f")

	_, err = partition.Resolve("", "")
	require.Error(t, err)
	_, err = partition.Resolve("", "moon-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"moon-1"`)
}

func TestValidAccount(t *testing.T) {
	assert.True(t, partition.ValidAccount("123456789012"))
	for _, bad := range []string{"", "12345678901", "1234567890123", "12345678901a", "-23456789012"} {
		assert.False(t, partition.ValidAccount(bad), bad)
	}
}

func TestServiceHost(t *testing.T) {
	rest, ps, ok := partition.ServiceHost("db.abc.us-isob-east-1.rds.sc2s.sgov.gov", "rds")
	require.True(t, ok)
	assert.Equal(t, "db.abc.us-isob-east-1", rest)
	require.Len(t, ps, 1)
	assert.Equal(t, "aws-iso-b", ps[0].ID)

	rest, ps, ok = partition.ServiceHost("db.abc.us-gov-west-1.rds.amazonaws.com", "rds")
	require.True(t, ok)
	assert.Equal(t, "db.abc.us-gov-west-1", rest)
	p, ok := partition.RegionIn("us-gov-west-1", ps)
	require.True(t, ok)
	assert.Equal(t, "aws-us-gov", p.ID)
	_, ok = partition.RegionIn("cn-north-1", ps)
	assert.False(t, ok)

	_, _, ok = partition.ServiceHost("db.abc.us-east-1.rds.amazonaws.com.evil", "rds")
	assert.False(t, ok)
	_, _, ok = partition.ServiceHost(".rds.amazonaws.com", "rds")
	assert.False(t, ok)
}

// TestDNSSuffixMatchesSDK resolves each partition's regions with the SDK's
// own STS endpoint rules and checks the host ends in the table's suffix.
func TestDNSSuffixMatchesSDK(t *testing.T) {
	resolver := sts.NewDefaultEndpointResolverV2()
	for _, p := range partition.All() {
		for _, r := range p.Regions {
			region := r
			ep, err := resolver.ResolveEndpoint(context.Background(), sts.EndpointParameters{Region: &region})
			require.NoError(t, err, region)
			assert.True(t, strings.HasSuffix(ep.URI.Host, "."+p.DNSSuffix), "%s: SDK resolves %s, table says *.%s", region, ep.URI.Host, p.DNSSuffix)
		}
	}
}

// TestTableMatchesSDKPartitions compares the table with the partitions
// file of the aws-sdk-go-v2 module this build uses: same partitions, same
// patterns, same DNS suffixes, same regions. A new SDK that adds a
// partition or region fails here until the table learns it.
func TestTableMatchesSDKPartitions(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Skipf("go list -m github.com/aws/aws-sdk-go-v2: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	require.NoError(t, err)
	var doc struct {
		Partitions []struct {
			ID          string                     `json:"id"`
			RegionRegex string                     `json:"regionRegex"`
			Regions     map[string]json.RawMessage `json:"regions"`
			Outputs     struct {
				DNSSuffix            string `json:"dnsSuffix"`
				ImplicitGlobalRegion string `json:"implicitGlobalRegion"`
			} `json:"outputs"`
		} `json:"partitions"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Len(t, partition.All(), len(doc.Partitions), "partitions known to the SDK: %+v", doc.Partitions)
	for _, sp := range doc.Partitions {
		p, ok := partition.Lookup(sp.ID)
		require.True(t, ok, "the SDK knows partition %s", sp.ID)
		assert.Equal(t, sp.Outputs.DNSSuffix, p.DNSSuffix, sp.ID)
		assert.Equal(t, sp.Outputs.ImplicitGlobalRegion, p.ImplicitGlobalRegion, sp.ID)
		var regions []string
		for r := range sp.Regions {
			if !strings.HasSuffix(r, "-global") {
				regions = append(regions, r)
			}
		}
		assert.ElementsMatch(t, regions, p.Regions, sp.ID)
		re := regexp.MustCompile(sp.RegionRegex)
		for _, r := range p.Regions {
			assert.True(t, re.MatchString(r), "%s: %s does not match the SDK's %s", sp.ID, r, sp.RegionRegex)
			got, ok := partition.ForRegion(r)
			require.True(t, ok, r)
			assert.Equal(t, sp.ID, got.ID, r)
		}
	}
}

func FuzzForRegion(f *testing.F) {
	for _, s := range []string{"us-east-1", "us-gov-west-1", "eusc-de-east-1", "cn-north-1", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, region string) {
		p, ok := partition.ForRegion(region)
		if !ok {
			return
		}
		// Whatever is accepted is a lower-case name the SDK's patterns admit.
		if region != strings.ToLower(region) || strings.ContainsAny(region, " _/.:") {
			t.Fatalf("accepted %q", region)
		}
		if _, ok := partition.Lookup(p.ID); !ok {
			t.Fatalf("unknown partition %q", p.ID)
		}
	})
}
