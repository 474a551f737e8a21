package elasticacheauth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/irsakit/irsakit/elasticacheauth"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in         string
		cache      string
		kind       elasticacheauth.EndpointKind
		serverless bool
		memorydb   bool
		code       string
		region     string
		port       int
	}{
		{"master.orders.abc123.use1.cache.amazonaws.com", "orders", elasticacheauth.KindPrimary, false, false, "use1", "us-east-1", 0},
		{"master.orders.abc123.use1.cache.amazonaws.com:6379", "orders", elasticacheauth.KindPrimary, false, false, "use1", "us-east-1", 6379},
		{"Master.Orders.ABC123.USE1.cache.amazonaws.com.", "orders", elasticacheauth.KindPrimary, false, false, "use1", "us-east-1", 0},
		{"replica.orders.abc123.euw1.cache.amazonaws.com", "orders", elasticacheauth.KindReader, false, false, "euw1", "eu-west-1", 0},
		{"clustercfg.orders-cluster.abc123.apse2.cache.amazonaws.com:6379", "orders-cluster", elasticacheauth.KindConfiguration, false, false, "apse2", "ap-southeast-2", 6379},
		{"orders-cluster-0001-001.orders-cluster.abc123.usw2.cache.amazonaws.com", "orders-cluster", elasticacheauth.KindNode, false, false, "usw2", "us-west-2", 0},
		{"orders.abc123.ng.0001.apne1.cache.amazonaws.com", "orders", elasticacheauth.KindPrimary, false, false, "apne1", "ap-northeast-1", 0},
		{"orders-ro.abc123.ng.0001.cac1.cache.amazonaws.com", "orders", elasticacheauth.KindReader, false, false, "cac1", "ca-central-1", 0},
		{"orders.abc123.clustercfg.euc1.cache.amazonaws.com", "orders", elasticacheauth.KindConfiguration, false, false, "euc1", "eu-central-1", 0},
		{"orders-001.abc123.0001.sae1.cache.amazonaws.com", "orders", elasticacheauth.KindNode, false, false, "sae1", "sa-east-1", 0},
		{"sessions-x1y2z3.serverless.use1.cache.amazonaws.com:6379", "sessions", elasticacheauth.KindServerless, true, false, "use1", "us-east-1", 6379},
		{"my-sessions-x1y2z3.serverless.aps1.cache.amazonaws.com", "my-sessions", elasticacheauth.KindServerless, true, false, "aps1", "ap-south-1", 0},
		{"master.orders.abc123.cnn1.cache.amazonaws.com.cn", "orders", elasticacheauth.KindPrimary, false, false, "cnn1", "cn-north-1", 0},
		{"sessions-abc.serverless.cnnw1.cache.amazonaws.com.cn", "sessions", elasticacheauth.KindServerless, true, false, "cnnw1", "cn-northwest-1", 0},
		{"master.orders.abc123.usgw1.cache.amazonaws.com", "orders", elasticacheauth.KindPrimary, false, false, "usgw1", "us-gov-west-1", 0},
		{"master.orders.abc123.xx9.cache.amazonaws.com", "orders", elasticacheauth.KindPrimary, false, false, "xx9", "", 0},
		{"clustercfg.mdb.abc123.memorydb.us-east-1.amazonaws.com:6379", "mdb", elasticacheauth.KindConfiguration, false, true, "us-east-1", "us-east-1", 6379},
		{"mdb-0001-001.mdb.abc123.memorydb.eu-west-2.amazonaws.com", "mdb", elasticacheauth.KindNode, false, true, "eu-west-2", "eu-west-2", 0},
		{"clustercfg.mdb.abc123.memorydb.us-gov-west-1.amazonaws.com", "mdb", elasticacheauth.KindConfiguration, false, true, "us-gov-west-1", "us-gov-west-1", 0},
		{"clustercfg.mdb.abc123.memorydb.cn-north-1.amazonaws.com.cn", "mdb", elasticacheauth.KindConfiguration, false, true, "cn-north-1", "cn-north-1", 0},
		// The other partitions: the region in the name, or an undecodable
		// short code (then the caller gives the region).
		{"master.orders.abc123.us-iso-east-1.cache.c2s.ic.gov", "orders", elasticacheauth.KindPrimary, false, false, "us-iso-east-1", "us-iso-east-1", 0},
		{"master.orders.abc123.us-isob-east-1.cache.sc2s.sgov.gov", "orders", elasticacheauth.KindPrimary, false, false, "us-isob-east-1", "us-isob-east-1", 0},
		{"master.orders.abc123.eu-isoe-west-1.cache.cloud.adc-e.uk", "orders", elasticacheauth.KindPrimary, false, false, "eu-isoe-west-1", "eu-isoe-west-1", 0},
		{"master.orders.abc123.us-isof-south-1.cache.csp.hci.ic.gov", "orders", elasticacheauth.KindPrimary, false, false, "us-isof-south-1", "us-isof-south-1", 0},
		{"sessions-x1.serverless.eusc-de-east-1.cache.amazonaws.eu", "sessions", elasticacheauth.KindServerless, true, false, "eusc-de-east-1", "eusc-de-east-1", 0},
		{"clustercfg.mdb.abc123.memorydb.eusc-de-east-1.amazonaws.eu", "mdb", elasticacheauth.KindConfiguration, false, true, "eusc-de-east-1", "eusc-de-east-1", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			e, err := elasticacheauth.ParseEndpoint(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if e.CacheName != tc.cache || e.Kind != tc.kind || e.Serverless != tc.serverless || e.MemoryDB != tc.memorydb ||
				e.RegionCode != tc.code || e.Region != tc.region || e.Port != tc.port {
				t.Fatalf("got %+v", e)
			}
			if e.Cluster() != (tc.kind == elasticacheauth.KindConfiguration || tc.kind == elasticacheauth.KindServerless) {
				t.Fatalf("Cluster() = %v for %v", e.Cluster(), e.Kind)
			}
		})
	}
}

func TestParseEndpointRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"127.0.0.1:6379",
		"localhost",
		"orders",
		"master.orders.abc123.use1.cache.amazonaws.com:0",
		"master.orders.abc123.use1.cache.amazonaws.com:http",
		"mydb.abc123.us-east-1.rds.amazonaws.com",
		"master..abc123.use1.cache.amazonaws.com",
		"cache.amazonaws.com",
		"use1.cache.amazonaws.com",
		"x.serverless.use1.cache.amazonaws.com",
		"-abc.serverless.use1.cache.amazonaws.com",
		"a.b.c.d.e.f.use1.cache.amazonaws.com",
		"other.orders.abc123.use1.cache.amazonaws.com",
		"master.or_ders!.abc123.use1.cache.amazonaws.com",
		"clustercfg.mdb.abc123.memorydb.use1.amazonaws.com",
		"master.orders.abc123.use1.cache.amazonaws.com.evil.example",
		"master.orders.abc123.use1.cache.amazonaws.com.cn",            // aws region under the aws-cn suffix
		"master.orders.abc123.us-east-1.cache.c2s.ic.gov",             // aws region under an aws-iso suffix
		"clustercfg.mdb.abc123.memorydb.cn-north-1.amazonaws.com",     // China region outside aws-cn
		"clustercfg.mdb.abc123.memorydb.eusc-de-east-1.amazonaws.com", // aws-eusc region under the aws suffix
	} {
		if e, err := elasticacheauth.ParseEndpoint(in); !errors.Is(err, elasticacheauth.ErrInvalidEndpoint) {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want ErrInvalidEndpoint", in, e, err)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"master.orders.abc123.use1.cache.amazonaws.com:6379",
		"replica.orders.abc123.euw1.cache.amazonaws.com",
		"clustercfg.c.abc123.apse2.cache.amazonaws.com",
		"c-0001-001.c.abc123.usw2.cache.amazonaws.com",
		"orders.abc123.ng.0001.apne1.cache.amazonaws.com",
		"orders-ro.abc123.ng.0001.cac1.cache.amazonaws.com",
		"orders-001.abc123.0001.sae1.cache.amazonaws.com",
		"sessions-x1y2z3.serverless.use1.cache.amazonaws.com",
		"master.orders.abc123.cnn1.cache.amazonaws.com.cn",
		"clustercfg.mdb.abc123.memorydb.us-east-1.amazonaws.com:6379",
		"[::1]:6379", "::::", "a-.serverless.x.cache.amazonaws.com", "--0001-001.-.a.b.cache.amazonaws.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := elasticacheauth.ParseEndpoint(in)
		if err != nil {
			if !errors.Is(err, elasticacheauth.ErrInvalidEndpoint) {
				t.Fatalf("error %v does not wrap ErrInvalidEndpoint", err)
			}
			return
		}
		// Whatever parses yields a name a TokenSource accepts, lower-case,
		// and a region name or nothing.
		if e.CacheName == "" || e.CacheName != strings.ToLower(e.CacheName) || strings.ContainsAny(e.CacheName, "./:?#@ ") {
			t.Fatalf("bad cache name %q from %q", e.CacheName, in)
		}
		if e.Kind < elasticacheauth.KindPrimary || e.Kind > elasticacheauth.KindServerless {
			t.Fatalf("kind %v", e.Kind)
		}
		if e.Serverless != (e.Kind == elasticacheauth.KindServerless) {
			t.Fatalf("serverless %v with kind %v", e.Serverless, e.Kind)
		}
		if e.Serverless && e.MemoryDB {
			t.Fatal("serverless MemoryDB")
		}
		if !strings.Contains(e.Host, e.CacheName) {
			t.Fatalf("cache name %q not in host %q", e.CacheName, e.Host)
		}
		src, err := elasticacheauth.NewTokenSource(e.CacheName, "u", static(zeroCreds), func(o *elasticacheauth.Options) {
			o.Region = "us-east-1"
			if e.Region != "" {
				o.Region = e.Region
			}
			o.Serverless, o.MemoryDB = e.Serverless, e.MemoryDB
		})
		if err != nil {
			t.Fatalf("NewTokenSource refuses what ParseEndpoint gave (%+v): %v", e, err)
		}
		src.Close()
	})
}
