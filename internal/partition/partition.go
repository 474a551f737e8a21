// Package partition is irsakit's one table of AWS partitions, region names
// and account ids. Every package that validates a region, derives a
// partition for an ARN or recognises a service endpoint by its DNS suffix
// asks this table, so they all accept the same names: those of the
// partitions the AWS SDK for Go v2 knows (aws, aws-cn, aws-us-gov, aws-iso,
// aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc).
//
// The region patterns, DNS suffixes and region lists are those of the SDK's
// endpoint rules (internal/endpoints/awsrulesfn/partitions.json of
// aws-sdk-go-v2); partition_test.go checks the table against what the SDK
// resolves, so a new SDK release that adds a partition fails a test here.
package partition

import (
	"fmt"
	"regexp"
	"strings"
)

// Partition is one AWS partition.
type Partition struct {
	// ID is the partition's name as it appears in ARNs: "aws", "aws-cn", …
	ID string
	// DNSSuffix is the suffix of its service endpoints: "amazonaws.com",
	// "amazonaws.com.cn", "c2s.ic.gov", …
	DNSSuffix string
	// ImplicitGlobalRegion is where global services (IAM, the STS global
	// endpoint) live in this partition.
	ImplicitGlobalRegion string
	// Regions are the regions known when this table was written; a region
	// name matching the partition's pattern is accepted too, so a region
	// launched later works without a new release.
	Regions []string
	pattern *regexp.Regexp
}

// Example returns a region name of the partition for error messages.
func (p Partition) Example() string { return p.ImplicitGlobalRegion }

// table is in the SDK's order; aws comes first and aws-us-gov's regions
// (us-gov-…) are kept out of aws by aws's pattern.
var table = []Partition{
	{
		ID: "aws", DNSSuffix: "amazonaws.com", ImplicitGlobalRegion: "us-east-1",
		pattern: regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`),
		Regions: []string{
			"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
			"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
			"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1",
			"eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
			"il-central-1", "me-central-1", "me-south-1", "me-west-1", "mx-central-1", "sa-east-1", "sa-west-1", "us-east-1",
			"us-east-2", "us-west-1", "us-west-2",
		},
	},
	{
		ID: "aws-cn", DNSSuffix: "amazonaws.com.cn", ImplicitGlobalRegion: "cn-northwest-1",
		pattern: regexp.MustCompile(`^cn-\w+-\d+$`),
		Regions: []string{"cn-north-1", "cn-northwest-1"},
	},
	{
		ID: "aws-eusc", DNSSuffix: "amazonaws.eu", ImplicitGlobalRegion: "eusc-de-east-1",
		pattern: regexp.MustCompile(`^eusc-(de)-\w+-\d+$`),
		Regions: []string{"eusc-de-east-1"},
	},
	{
		ID: "aws-iso", DNSSuffix: "c2s.ic.gov", ImplicitGlobalRegion: "us-iso-east-1",
		pattern: regexp.MustCompile(`^us-iso-\w+-\d+$`),
		Regions: []string{"us-iso-east-1", "us-iso-west-1"},
	},
	{
		ID: "aws-iso-b", DNSSuffix: "sc2s.sgov.gov", ImplicitGlobalRegion: "us-isob-east-1",
		pattern: regexp.MustCompile(`^us-isob-\w+-\d+$`),
		Regions: []string{"us-isob-east-1", "us-isob-west-1"},
	},
	{
		ID: "aws-iso-e", DNSSuffix: "cloud.adc-e.uk", ImplicitGlobalRegion: "eu-isoe-west-1",
		pattern: regexp.MustCompile(`^eu-isoe-\w+-\d+$`),
		Regions: []string{"eu-isoe-west-1"},
	},
	{
		ID: "aws-iso-f", DNSSuffix: "csp.hci.ic.gov", ImplicitGlobalRegion: "us-isof-south-1",
		pattern: regexp.MustCompile(`^us-isof-\w+-\d+$`),
		Regions: []string{"us-isof-east-1", "us-isof-south-1"},
	},
	{
		ID: "aws-us-gov", DNSSuffix: "amazonaws.com", ImplicitGlobalRegion: "us-gov-west-1",
		pattern: regexp.MustCompile(`^us-gov-\w+-\d+$`),
		Regions: []string{"us-gov-east-1", "us-gov-west-1"},
	},
}

// All returns every partition, in the SDK's order.
func All() []Partition { return append([]Partition(nil), table...) }

// IDs returns the partition names, for messages: "aws, aws-cn, …".
func IDs() string {
	ids := make([]string, len(table))
	for i, p := range table {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// Lookup returns the partition named id.
func Lookup(id string) (Partition, bool) {
	for _, p := range table {
		if p.ID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// ForRegion returns the partition region belongs to: the one listing it,
// else the one whose pattern it matches (as the SDK resolves it). ok is
// false for a name that is no region of any partition ("", "local",
// "us-east", "aws-global", "xx-east-1").
func ForRegion(region string) (Partition, bool) {
	for _, p := range table {
		for _, r := range p.Regions {
			if r == region {
				return p, true
			}
		}
	}
	// Every pattern needs a letter-only area and a numeric last part; \w
	// would also take '_' and upper case, which no region has.
	if region == "" || region != strings.ToLower(region) || strings.Contains(region, "_") || len(region) > 32 {
		return Partition{}, false
	}
	for _, p := range table {
		if p.pattern.MatchString(region) {
			return p, true
		}
	}
	return Partition{}, false
}

// IDOf returns the ID of region's partition, or "aws" for a name that is no
// region of any partition: the SDK resolves such names in aws too.
func IDOf(region string) string {
	if p, ok := ForRegion(region); ok {
		return p.ID
	}
	return "aws"
}

// ValidRegion reports whether region is a region name of some partition.
func ValidRegion(region string) bool {
	_, ok := ForRegion(region)
	return ok
}

// ValidAccount reports whether id is a 12-digit AWS account id.
func ValidAccount(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// RegionError is the message for a name ValidRegion refuses.
func RegionError(what, region string) string {
	return fmt.Sprintf("%s %q is not an AWS region name such as us-east-1, cn-north-1, us-gov-west-1 or eusc-de-east-1", what, region)
}

// AccountError is the message for an id ValidAccount refuses.
func AccountError(what, id string) string {
	return fmt.Sprintf("%s %q is not a 12-digit AWS account id (aws sts get-caller-identity --query Account --output text)", what, id)
}

// Resolve picks the partition of a policy or ARN: explicit when set (it
// must exist and, when region is set, contain region), else region's.
func Resolve(explicit, region string) (Partition, error) {
	var rp Partition
	if region != "" {
		var ok bool
		if rp, ok = ForRegion(region); !ok {
			return Partition{}, fmt.Errorf("%s", RegionError("region", region))
		}
	}
	if explicit == "" {
		if region == "" {
			return Partition{}, fmt.Errorf("no region and no partition: give one (partitions: %s)", IDs())
		}
		return rp, nil
	}
	p, ok := Lookup(explicit)
	if !ok {
		return Partition{}, fmt.Errorf("unknown partition %q (want one of %s)", explicit, IDs())
	}
	if region != "" && rp.ID != p.ID {
		return Partition{}, fmt.Errorf("region %s is in partition %s, not %s: drop the partition or fix the region", region, rp.ID, p.ID)
	}
	return p, nil
}

// ServiceHost splits host (lower case, no trailing dot) ending in
// ".SERVICE.DNSSUFFIX" of some partition into the part before it and the
// candidate partitions (aws and aws-us-gov share amazonaws.com; the caller
// tells them apart by the region in the name). ok is false when host ends
// in no partition's suffix for service.
func ServiceHost(host, service string) (rest string, candidates []Partition, ok bool) {
	for _, p := range table {
		suffix := "." + service + "." + p.DNSSuffix
		if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			rest = strings.TrimSuffix(host, suffix)
			candidates = append(candidates, p)
		}
	}
	return rest, candidates, len(candidates) > 0
}

// RegionIn reports whether region is a region of one of ps.
func RegionIn(region string, ps []Partition) (Partition, bool) {
	p, ok := ForRegion(region)
	if !ok {
		return Partition{}, false
	}
	for _, c := range ps {
		if c.ID == p.ID {
			return p, true
		}
	}
	return Partition{}, false
}
