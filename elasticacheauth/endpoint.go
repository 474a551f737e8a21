package elasticacheauth

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/irsakit/irsakit/internal/partition"
)

// EndpointKind says which of a cache's endpoints a host name is.
type EndpointKind int

// Endpoint kinds.
const (
	// KindPrimary: a replication group's primary endpoint
	// (master.RG.ID.RC.cache.amazonaws.com, or RG.ID.ng.0001.RC.… in the
	// older form).
	KindPrimary EndpointKind = iota + 1
	// KindReader: the reader endpoint (replica.RG.ID.RC.…, or RG-ro.ID.ng.0001.RC.…).
	KindReader
	// KindConfiguration: a cluster-mode configuration endpoint
	// (clustercfg.RG.ID.RC.…, or RG.ID.clustercfg.RC.…), or a MemoryDB
	// cluster endpoint.
	KindConfiguration
	// KindNode: one node (RG-0001-001.RG.ID.RC.…, RG-001.ID.0001.RC.…).
	KindNode
	// KindServerless: a serverless cache endpoint (NAME-ID.serverless.RC.…).
	KindServerless
)

func (k EndpointKind) String() string {
	switch k {
	case KindPrimary:
		return "primary"
	case KindReader:
		return "reader"
	case KindConfiguration:
		return "configuration"
	case KindNode:
		return "node"
	case KindServerless:
		return "serverless"
	}
	return "EndpointKind(" + strconv.Itoa(int(k)) + ")"
}

// Endpoint is what an ElastiCache or MemoryDB endpoint name tells.
type Endpoint struct {
	// Host is the endpoint host, lower-cased, without port.
	Host string
	// Port is the port if the input had one, else 0.
	Port int
	// CacheName is the replication group id, serverless cache name or
	// MemoryDB cluster name: what tokens are signed for.
	CacheName string
	Kind      EndpointKind
	// Serverless: tokens need ResourceType=ServerlessCache, and the cache
	// speaks the cluster protocol.
	Serverless bool
	// MemoryDB: tokens use the signing name memorydb.
	MemoryDB bool
	// RegionCode is the region as the name spells it: a short code such as
	// "use1" for ElastiCache, the region name for MemoryDB.
	RegionCode string
	// Region is the region name ("us-east-1") decoded from RegionCode, or
	// "" when the code is not one this package can decode.
	Region string
}

// Cluster reports whether the endpoint is served in cluster mode
// (configuration or serverless endpoint).
func (e Endpoint) Cluster() bool {
	return e.Kind == KindConfiguration || e.Kind == KindServerless
}

// ParseEndpoint parses an ElastiCache or MemoryDB endpoint name, with or
// without ":port", and returns the cache name tokens must be signed for,
// the kind of endpoint, whether it is serverless, and its region. Accepted
// forms (RC is a region code such as use1, ID the account-specific id):
//
//	master.RG.ID.RC.cache.amazonaws.com           primary
//	replica.RG.ID.RC.cache.amazonaws.com          reader
//	clustercfg.RG.ID.RC.cache.amazonaws.com       configuration (cluster mode)
//	RG-0001-001.RG.ID.RC.cache.amazonaws.com      node
//	RG.ID.ng.0001.RC.cache.amazonaws.com          primary (older form; RG-ro: reader)
//	RG.ID.clustercfg.RC.cache.amazonaws.com       configuration (older form)
//	RG-001.ID.0001.RC.cache.amazonaws.com         node (older form)
//	NAME-ID.serverless.RC.cache.amazonaws.com     serverless cache
//	clustercfg.NAME.ID.memorydb.REGION.amazonaws.com   MemoryDB cluster
//
// and the same in every other partition the SDK knows (cache.amazonaws.com.cn,
// cache.c2s.ic.gov, …, cache.amazonaws.eu): a region spelled in the name
// must belong to the partition of its DNS suffix.
func ParseEndpoint(endpoint string) (Endpoint, error) {
	host, port := endpoint, 0
	if h, p, err := net.SplitHostPort(endpoint); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return Endpoint{}, fmt.Errorf("%w: %q: bad port", ErrInvalidEndpoint, endpoint)
		}
		host, port = h, n
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	e := Endpoint{Host: host, Port: port}
	bad := func(why string) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("%w: %q is not an ElastiCache or MemoryDB endpoint name (%s); pass the cache name and region explicitly", ErrInvalidEndpoint, endpoint, why)
	}
	rest, candidates, ok := partition.ServiceHost(host, "cache")
	if !ok {
		for _, p := range partition.All() {
			if suffix := "." + p.DNSSuffix; strings.HasSuffix(host, suffix) && strings.Contains(host, ".memorydb.") {
				candidates = append(candidates, p)
				rest = strings.TrimSuffix(host, suffix)
			}
		}
		if len(candidates) > 0 {
			return parseMemoryDB(e, rest, candidates, bad)
		}
		return bad("unknown domain")
	}
	l := strings.Split(rest, ".")
	for _, s := range l {
		if s == "" {
			return bad("empty label")
		}
	}
	if len(l) < 3 {
		return bad("too few labels")
	}
	e.RegionCode = l[len(l)-1]
	switch {
	case len(l) == 3 && l[1] == "serverless":
		// NAME-ID.serverless.RC
		i := strings.LastIndexByte(l[0], '-')
		if i <= 0 || i == len(l[0])-1 {
			return bad("serverless label without -ID")
		}
		e.CacheName, e.Kind, e.Serverless = l[0][:i], KindServerless, true
	case len(l) == 4 && (l[0] == "master" || l[0] == "replica" || l[0] == "clustercfg"):
		e.CacheName = l[1]
		e.Kind = map[string]EndpointKind{"master": KindPrimary, "replica": KindReader, "clustercfg": KindConfiguration}[l[0]]
	case len(l) == 5 && l[2] == "ng" && digits(l[3]):
		// RG.ID.ng.0001.RC or RG-ro.ID.ng.0001.RC
		e.CacheName, e.Kind = l[0], KindPrimary
		if strings.HasSuffix(l[0], "-ro") && len(l[0]) > 3 {
			e.CacheName, e.Kind = strings.TrimSuffix(l[0], "-ro"), KindReader
		}
	case len(l) == 4 && l[2] == "clustercfg":
		e.CacheName, e.Kind = l[0], KindConfiguration
	case len(l) == 4 && digits(l[2]):
		// RG-001.ID.0001.RC: node of a cluster-mode-disabled group.
		name, ok := trimNodeSuffix(l[0])
		if !ok {
			return bad("node label without -NNN")
		}
		e.CacheName, e.Kind = name, KindNode
	case len(l) == 4 && strings.HasPrefix(l[0], l[1]+"-"):
		// RG-0001-001.RG.ID.RC
		if _, ok := trimNodeSuffix(l[0]); !ok {
			return bad("node label without -NNNN-NNN")
		}
		e.CacheName, e.Kind = l[1], KindNode
	default:
		return bad("unrecognised layout")
	}
	if _, err := checkCacheName(e.CacheName); err != nil {
		return bad("invalid cache name")
	}
	e.Region = decodeRegionCode(e.RegionCode)
	if e.Region != "" {
		if _, ok := partition.RegionIn(e.Region, candidates); !ok {
			return bad(fmt.Sprintf("region %s is not in the partition of its domain", e.Region))
		}
	}
	return e, nil
}

func parseMemoryDB(e Endpoint, rest string, candidates []partition.Partition, bad func(string) (Endpoint, error)) (Endpoint, error) {
	// clustercfg.NAME.ID.memorydb.REGION or NAME-0001-001.NAME.ID.memorydb.REGION
	l := strings.Split(rest, ".")
	if len(l) != 5 || l[3] != "memorydb" {
		return bad("unrecognised MemoryDB layout")
	}
	for _, s := range l {
		if s == "" {
			return bad("empty label")
		}
	}
	e.MemoryDB = true
	e.RegionCode = l[4]
	switch {
	case l[0] == "clustercfg":
		e.CacheName, e.Kind = l[1], KindConfiguration
	case strings.HasPrefix(l[0], l[1]+"-"):
		if _, ok := trimNodeSuffix(l[0]); !ok {
			return bad("node label without -NNNN-NNN")
		}
		e.CacheName, e.Kind = l[1], KindNode
	default:
		return bad("unrecognised MemoryDB layout")
	}
	if _, err := checkCacheName(e.CacheName); err != nil {
		return bad("invalid cluster name")
	}
	if _, ok := partition.RegionIn(e.RegionCode, candidates); !ok {
		return bad("invalid region")
	}
	e.Region = e.RegionCode
	return e, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// trimNodeSuffix removes a node suffix "-NNN" or "-NNNN-NNN".
func trimNodeSuffix(label string) (string, bool) {
	i := strings.LastIndexByte(label, '-')
	if i <= 0 || !digits(label[i+1:]) {
		return "", false
	}
	name := label[:i]
	if j := strings.LastIndexByte(name, '-'); j > 0 && len(name)-j-1 == 4 && digits(name[j+1:]) {
		name = name[:j]
	}
	return name, name != ""
}

// regionDirections maps the direction part of a short region code.
var regionDirections = map[string]string{
	"e": "east", "w": "west", "n": "north", "s": "south", "c": "central",
	"ne": "northeast", "nw": "northwest", "se": "southeast", "sw": "southwest",
}

// decodeRegionCode turns a short code such as "use1", "apse2", "cac1",
// "usgw1" into a region name; it returns "" when the code does not have the
// AREA DIRECTION NUMBER shape.
func decodeRegionCode(code string) string {
	if partition.ValidRegion(code) {
		return code // already a region name
	}
	i := len(code)
	for i > 0 && code[i-1] >= '0' && code[i-1] <= '9' {
		i--
	}
	num, head := code[i:], code[:i]
	if num == "" || len(head) < 3 {
		return ""
	}
	area, dir := head[:2], head[2:]
	gov := ""
	if area == "us" && strings.HasPrefix(dir, "g") && len(dir) > 1 {
		gov, dir = "gov-", dir[1:]
	}
	d, ok := regionDirections[dir]
	if !ok {
		return ""
	}
	for j := 0; j < 2; j++ {
		if area[j] < 'a' || area[j] > 'z' {
			return ""
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 99 {
		return ""
	}
	return area + "-" + gov + d + "-" + strconv.Itoa(n)
}

// clientRegion picks the region tokens for host are signed for: the one in
// its endpoint name (which an explicit region must agree with), else the
// explicit one, else fallback (the aws.Config's) when host is not an
// endpoint name at all. An endpoint name whose region code cannot be
// decoded needs the explicit region: guessing the aws.Config's would sign
// every token for what may be the wrong region.
func clientRegion(host string, ep Endpoint, epErr error, explicit, fallback string) (string, error) {
	switch {
	case epErr != nil && explicit != "":
		return explicit, nil
	case epErr != nil:
		return fallback, nil
	case ep.Region != "" && explicit != "" && explicit != ep.Region:
		return "", fmt.Errorf("%w: %s is in %s but Options.Region (ClientOptions.Token) is %s; drop Options.Region or fix the endpoint",
			ErrRegionMismatch, host, ep.Region, explicit)
	case ep.Region != "":
		return ep.Region, nil
	case explicit == "":
		return "", fmt.Errorf("%w: %s spells its region as %q, a code this package cannot decode; set Options.Region (ClientOptions.Token) to the cache's region, for example us-east-1",
			ErrNoRegion, host, ep.RegionCode)
	}
	return explicit, nil
}
