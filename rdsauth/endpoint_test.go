package rdsauth_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/irsakit/irsakit/rdsauth"
)

func TestRegionFromHost(t *testing.T) {
	tests := []struct {
		host   string
		region string // "" = not derivable
	}{
		{"mydb.c9akciq32.us-east-1.rds.amazonaws.com", "us-east-1"},
		{"MyDB.C9AKCIQ32.US-EAST-1.RDS.AMAZONAWS.COM.", "us-east-1"},
		{"aurora.cluster-c9akciq32.eu-west-1.rds.amazonaws.com", "eu-west-1"},
		{"aurora.cluster-ro-c9akciq32.eu-west-1.rds.amazonaws.com", "eu-west-1"},
		{"aurora.cluster-custom-c9akciq32.ap-southeast-2.rds.amazonaws.com", "ap-southeast-2"},
		{"myproxy.proxy-c9akciq32.us-west-2.rds.amazonaws.com", "us-west-2"},
		{"myproxy-ro.endpoint.proxy-c9akciq32.us-west-2.rds.amazonaws.com", "us-west-2"},
		{"mydb.c9akciq32.cn-north-1.rds.amazonaws.com.cn", "cn-north-1"},
		{"mydb.c9akciq32.cn-northwest-1.rds.amazonaws.com.cn", "cn-northwest-1"},
		{"mydb.c9akciq32.us-gov-west-1.rds.amazonaws.com", "us-gov-west-1"},
		{"mydb.c9akciq32.il-central-1.rds.amazonaws.com", "il-central-1"},
		{"aurora.cluster-c9akciq32.us-iso-east-1.rds.c2s.ic.gov", "us-iso-east-1"},
		{"aurora.cluster-c9akciq32.us-isob-east-1.rds.sc2s.sgov.gov", "us-isob-east-1"},
		{"aurora.cluster-c9akciq32.eu-isoe-west-1.rds.cloud.adc-e.uk", "eu-isoe-west-1"},
		{"aurora.cluster-c9akciq32.us-isof-south-1.rds.csp.hci.ic.gov", "us-isof-south-1"},
		{"aurora.cluster-c9akciq32.eusc-de-east-1.rds.amazonaws.eu", "eusc-de-east-1"},
		// Not derivable.
		{"10.0.0.7", ""},
		{"db.internal.example.com", ""},
		{"c9akciq32.us-east-1.rds.amazonaws.com", ""},              // no instance label
		{"mydb..us-east-1.rds.amazonaws.com", ""},                  // empty label
		{"mydb.c9akciq32.cn-north-1.rds.amazonaws.com", ""},        // China region outside aws-cn
		{"mydb.c9akciq32.us-east-1.rds.amazonaws.com.cn", ""},      // aws-cn suffix, non-China region
		{"mydb.c9akciq32.useast1.rds.amazonaws.com", ""},           // not a region
		{"mydb.c9akciq32.us-east-1.rds.amazonaws.com.evil.io", ""}, // suffix elsewhere
		{"rds.amazonaws.com", ""},
		{"mydb.c9akciq32.us-east-1.rds.c2s.ic.gov", ""},         // aws region under an aws-iso suffix
		{"mydb.c9akciq32.eusc-de-east-1.rds.amazonaws.com", ""}, // aws-eusc region under the aws suffix
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, ok := rdsauth.RegionFromHost(tt.host)
			if ok != (tt.region != "") || got != tt.region {
				t.Errorf("RegionFromHost = %q, %v; want %q", got, ok, tt.region)
			}
		})
	}
}

func TestSplitEndpoint(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint16
		err  error
	}{
		{in: "mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432", host: "mydb.c9akciq32.us-east-1.rds.amazonaws.com", port: 5432},
		{in: "127.0.0.1:6543", host: "127.0.0.1", port: 6543},
		{in: "[::1]:5432", host: "::1", port: 5432},
		{in: "mydb.c9akciq32.us-east-1.rds.amazonaws.com", err: rdsauth.ErrMissingPort},
		{in: "127.0.0.1", err: rdsauth.ErrMissingPort},
		{in: "", err: rdsauth.ErrInvalidEndpoint},
		{in: ":5432", err: rdsauth.ErrInvalidEndpoint},
		{in: "h:+5432", err: rdsauth.ErrInvalidEndpoint},
		{in: "h:05432", err: rdsauth.ErrInvalidEndpoint},
		{in: "h:port", err: rdsauth.ErrInvalidEndpoint},
		{in: "h:5432:1", err: rdsauth.ErrInvalidEndpoint},
		{in: "user@h:5432", err: rdsauth.ErrInvalidEndpoint},
		{in: "h h:5432", err: rdsauth.ErrInvalidEndpoint},
		{in: "[not-ip]:5432", err: rdsauth.ErrInvalidEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := rdsauth.SplitEndpoint(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || host != tt.host || port != tt.port {
				t.Errorf("got %q %d %v", host, port, err)
			}
		})
	}
	_, _, err := rdsauth.SplitEndpoint("mydb.c9akciq32.us-east-1.rds.amazonaws.com")
	if !strings.Contains(err.Error(), `"mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432"`) {
		t.Errorf("missing-port error does not show the fix: %v", err)
	}
}

func FuzzSplitEndpoint(f *testing.F) {
	for _, s := range []string{
		"mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432", "[::1]:5432", "h", "h:", ":1", "[::1]", "a:b:c",
		"mydb.c9akciq32.cn-north-1.rds.amazonaws.com.cn:5432", "h:65535", "h:65536", "postgres://h:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := rdsauth.SplitEndpoint(s)
		if err != nil {
			if !errors.Is(err, rdsauth.ErrMissingPort) && !errors.Is(err, rdsauth.ErrInvalidEndpoint) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		if host == "" || port == 0 {
			t.Fatalf("accepted %q as %q:%d", s, host, port)
		}
		// What was accepted round-trips to the same endpoint.
		if got := net.JoinHostPort(host, strconv.Itoa(int(port))); got != s {
			t.Fatalf("%q split into %q, %d (joins to %q)", s, host, port, got)
		}
		if region, ok := rdsauth.RegionFromHost(host); ok && !strings.Contains(strings.ToLower(host), "."+region+".") {
			t.Fatalf("region %q is not in %q", region, host)
		}
	})
}

func FuzzRegionFromHost(f *testing.F) {
	for _, s := range []string{
		"mydb.c9akciq32.us-east-1.rds.amazonaws.com", "x.proxy-1.us-gov-east-1.rds.amazonaws.com",
		"a.b.cn-north-1.rds.amazonaws.com.cn", "..rds.amazonaws.com", "a.b.c-d-1.rds.amazonaws.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		region, ok := rdsauth.RegionFromHost(host)
		if !ok {
			if region != "" {
				t.Fatalf("region %q without ok", region)
			}
			return
		}
		// A derived region is always a valid policy region.
		if _, err := rdsauth.Policy(region, "111122223333", "db-ABC", []string{"u"}); err != nil {
			t.Fatalf("derived region %q is not a region: %v", region, err)
		}
	})
}
