package redisfront

import (
	"context"
	"errors"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

// Server is a real redis-server behind one front.
type Server struct {
	*Front
	Redis *procs.Redis
}

// StartServer starts a standalone redis-server (cluster mode disabled, like
// a replication group's primary endpoint) and a front before it.
func StartServer(ctx context.Context, o Options) (*Server, error) {
	f, err := Listen(o)
	if err != nil {
		return nil, err
	}
	r, err := procs.StartRedis(ctx)
	if err != nil {
		f.Close()
		return nil, err
	}
	f.Serve(r.Addr)
	return &Server{Front: f, Redis: r}, nil
}

// Close stops the front and the server.
func (s *Server) Close() error {
	return errors.Join(s.Front.Close(), s.Redis.Stop())
}

// Cluster is a set of cluster-mode redis-server nodes, each behind its own
// front; the nodes announce their fronts' ports, so CLUSTER SLOTS and MOVED
// send clients to fronts. All fronts share one CA and one Options.
type Cluster struct {
	Fronts []*Front
	Nodes  *procs.RedisCluster
}

// StartCluster starts n masters behind n fronts. A serverless cache
// (o.Serverless) is modelled by n = 1: one endpoint serving every slot.
func StartCluster(ctx context.Context, n int, o Options) (*Cluster, error) {
	if n < 1 {
		return nil, errors.New("redisfront: a cluster needs at least one node")
	}
	if o.CA == nil {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		o.CA = ca
	}
	c := &Cluster{}
	var ports []int
	for i := 0; i < n; i++ {
		f, err := Listen(o)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Fronts = append(c.Fronts, f)
		ports = append(ports, f.Port())
	}
	rc, err := procs.StartRedisCluster(ctx, ports)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Nodes = rc
	for i, f := range c.Fronts {
		f.Serve(rc.Nodes[i].Addr)
	}
	return c, nil
}

// Addrs are the fronts' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Fronts))
	for i, f := range c.Fronts {
		out[i] = f.Addr()
	}
	return out
}

// Stats sums the fronts' counters.
func (c *Cluster) Stats() Stats {
	var s Stats
	s.Rejected = map[string]int64{}
	for _, f := range c.Fronts {
		t := f.Stats()
		s.Accepted += t.Accepted
		s.Live += t.Live
		s.AuthOK += t.AuthOK
		s.Reauths += t.Reauths
		s.AuthFailed += t.AuthFailed
		s.PasswordAuths += t.PasswordAuths
		s.NoAuth += t.NoAuth
		s.Cuts += t.Cuts
		s.Forwarded += t.Forwarded
		for k, v := range t.Rejected {
			s.Rejected[k] += v
		}
	}
	return s
}

// SetConnLife sets the connection life on every front.
func (c *Cluster) SetConnLife(d time.Duration) {
	for _, f := range c.Fronts {
		f.SetConnLife(d)
	}
}

// Close stops the fronts and the nodes.
func (c *Cluster) Close() error {
	var errs []error
	for _, f := range c.Fronts {
		errs = append(errs, f.Close())
	}
	if c.Nodes != nil {
		errs = append(errs, c.Nodes.Stop())
	}
	return errors.Join(errs...)
}
