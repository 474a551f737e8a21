//lint:file-ignore SA1019 the deprecated feature/s3/manager is the baseline s3store is compared with here, and only here.

package s3store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/s3store"
)

// benchSize is the object size of the transfer benchmarks.
const benchSize = 1 << 30

const mib = 1 << 20

// genReader yields n pseudo-random bytes without holding them: a 1 MiB
// random block repeated, each copy stamped with its index. It is not an
// io.Seeker, so uploads take the path of a network stream of unknown size.
type genReader struct {
	block []byte
	off   int64
	n     int64
}

func newGenReader(n int64) *genReader {
	b := make([]byte, mib)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	return &genReader{block: b, n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.n {
		return 0, io.EOF
	}
	total := 0
	for len(p) > 0 && g.off < g.n {
		i := g.off % int64(len(g.block))
		m := copy(p, g.block[i:min(int64(len(g.block)), i+g.n-g.off)])
		if i == 0 && m >= 8 {
			binary.LittleEndian.PutUint64(p, uint64(g.off))
		}
		p, g.off, total = p[m:], g.off+int64(m), total+m
	}
	return total, nil
}

// discardAt is an io.WriterAt that counts and drops what it is given.
type discardAt struct{ n atomic.Int64 }

func (d *discardAt) WriteAt(p []byte, _ int64) (int, error) {
	d.n.Add(int64(len(p)))
	return len(p), nil
}

// transferStats is what one transfer cost the client.
type transferStats struct {
	seconds float64
	cpu     float64 // the process's user+system CPU seconds
	// peakHeap is the peak of the heap's object bytes (live and not yet
	// swept) above the level before the transfer: what the process needs
	// with the default GOGC. peakLive is the peak of the live heap after
	// each GC cycle during the transfer: what the transfer holds.
	peakHeap, peakLive float64 // MiB
	alloc              float64 // MiB allocated
}

// measure runs one transfer from a collected heap, sampling the heap
// every 2 ms.
func measure(transfer func() error) (transferStats, error) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	runtime.GC()
	metrics.Read(samples)
	baseHeap, baseLive, baseAlloc := samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64()

	var (
		stop               = make(chan struct{})
		done               sync.WaitGroup
		peakHeap, peakLive uint64
	)
	done.Go(func() {
		own := slices.Clone(samples[:2])
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(own)
			peakHeap = max(peakHeap, own[0].Value.Uint64())
			peakLive = max(peakLive, own[1].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	cpu0, t0 := cpuTime(), time.Now()
	err := transfer()
	took, cpu := time.Since(t0), cpuTime()-cpu0
	close(stop)
	done.Wait()
	metrics.Read(samples)
	above := func(v, base uint64) float64 { return float64(max(v, base)-base) / mib }
	return transferStats{
		seconds:  took.Seconds(),
		cpu:      cpu.Seconds(),
		peakHeap: above(peakHeap, baseHeap),
		peakLive: above(peakLive, baseLive),
		alloc:    above(samples[2].Value.Uint64(), baseAlloc),
	}, err
}

// cpuTime is this process's user+system CPU time: the client's work,
// which, unlike wall time, the load of other processes on the machine
// barely changes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// transferWay is one way of moving the benchmark's object.
type transferWay struct {
	name     string
	upload   func(ctx context.Context, key string) error
	download func(ctx context.Context, key string, w io.WriterAt) (int64, error)
}

// BenchmarkTransfer1GiB moves 1 GiB up and down through versitygw three
// ways, with credentials from the IRSA path and the same part size and
// concurrency (s3store's defaults): s3store, the SDK's transfer manager
// (feature/s3/transfermanager) used directly and configured as s3store
// configures it, and the deprecated feature/s3/manager s3store used before.
// The data is generated as it is sent (a stream of unknown size, so
// uploads buffer parts) and downloads go to a discarding io.WriterAt.
//
// Every iteration runs the three ways one after the other, rotating which
// goes first, each from a quiet disk and a collected heap, so load on the
// shared machine falls on all three alike. It reports for each way the
// median throughput, client CPU, allocation and the largest peak heap over
// the iterations, and the median, lowest and highest of the iterations'
// throughput ratios s3store ÷ transfermanager and s3store ÷ manager.
//
//	go test -run '^$' -bench Transfer1GiB -benchtime 7x ./s3store
func BenchmarkTransfer1GiB(b *testing.B) {
	st, cfg := newStoreCfg(b, testBucket, mustPolicy(b, testBucket, "bench/"))
	partSize, concurrency := int64(s3store.DefaultPartSize), s3store.DefaultConcurrency
	// The raw SDK ways, on the same config, with the client option
	// s3store sets for downloads: without it the SDK logs a line per
	// ranged part, which carries no checksum of the object.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.Concurrency = partSize, concurrency
		o.MultipartUploadThreshold = partSize
		o.GetObjectType = tmtypes.GetObjectRanges
	})
	uploader := manager.NewUploader(client, func(u *manager.Uploader) { u.PartSize, u.Concurrency = partSize, concurrency })
	downloader := manager.NewDownloader(client, func(d *manager.Downloader) { d.PartSize, d.Concurrency = partSize, concurrency })
	ways := []transferWay{
		{
			name: "s3store",
			upload: func(ctx context.Context, key string) error {
				_, err := st.Put(ctx, key, newGenReader(benchSize))
				return err
			},
			download: func(ctx context.Context, key string, w io.WriterAt) (int64, error) { return st.Download(ctx, key, w) },
		},
		{
			name: "transfermanager",
			upload: func(ctx context.Context, key string) error {
				_, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: newGenReader(benchSize)})
				return err
			},
			download: func(ctx context.Context, key string, w io.WriterAt) (int64, error) {
				out, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), WriterAt: w})
				if err != nil {
					return 0, err
				}
				return aws.ToInt64(out.ContentLength), nil
			},
		},
		{
			name: "manager",
			upload: func(ctx context.Context, key string) error {
				_, err := uploader.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: newGenReader(benchSize)})
				return err
			},
			download: func(ctx context.Context, key string, w io.WriterAt) (int64, error) {
				return downloader.Download(ctx, w, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
			},
		},
	}
	ctx := context.Background()
	b.Cleanup(func() {
		keys := []string{"bench/download"}
		for _, w := range ways {
			keys = append(keys, "bench/"+w.name)
		}
		_ = st.DeleteMany(context.Background(), keys)
	})

	for _, dir := range []string{"upload", "download"} {
		b.Run(dir, func(b *testing.B) {
			if dir == "download" {
				// All three read one object, from a warm page cache.
				const key = "bench/download"
				if obj, err := st.Stat(ctx, key); err != nil || obj.Size != benchSize {
					require.NoError(b, ways[0].upload(ctx, key))
				}
				_, err := st.Download(ctx, key, &discardAt{})
				require.NoError(b, err)
			}
			stats := map[string][]transferStats{}
			b.ResetTimer()
			for i := range b.N {
				for j := range ways {
					w := ways[(i+j)%len(ways)]
					// Flush the previous transfer's dirty pages, which the
					// server would otherwise write back during this one.
					b.StopTimer()
					syscall.Sync()
					b.StartTimer()
					s, err := measure(func() error {
						if dir == "upload" {
							return w.upload(ctx, "bench/"+w.name)
						}
						var d discardAt
						n, err := w.download(ctx, "bench/download", &d)
						if err == nil && (n != benchSize || d.n.Load() != benchSize) {
							err = fmt.Errorf("%s downloaded %d bytes, wrote %d, want %d", w.name, n, d.n.Load(), benchSize)
						}
						return err
					})
					require.NoError(b, err, w.name)
					stats[w.name] = append(stats[w.name], s)
				}
			}
			b.StopTimer()
			report(b, ways, stats, partSize, concurrency)
		})
	}
}

// report reports each way's figures and s3store's throughput ratios.
func report(b *testing.B, ways []transferWay, stats map[string][]transferStats, partSize int64, concurrency int) {
	of := func(way string, f func(transferStats) float64) []float64 {
		var xs []float64
		for _, s := range stats[way] {
			xs = append(xs, f(s))
		}
		return xs
	}
	for _, w := range ways {
		b.ReportMetric(median(of(w.name, func(s transferStats) float64 { return benchSize / 1e6 / s.seconds })), w.name+"-MB/s")
		b.ReportMetric(median(of(w.name, func(s transferStats) float64 { return s.cpu })), w.name+"-cpu-s")
		b.ReportMetric(median(of(w.name, func(s transferStats) float64 { return s.alloc })), w.name+"-alloc-MiB")
		b.ReportMetric(slices.Max(of(w.name, func(s transferStats) float64 { return s.peakHeap })), w.name+"-peak-heap-MiB")
		b.ReportMetric(slices.Max(of(w.name, func(s transferStats) float64 { return s.peakLive })), w.name+"-peak-live-MiB")
	}
	// Ratio of speeds within each iteration: a burst of load on the
	// machine skews one iteration, not the median.
	for _, other := range ways[1:] {
		var ratios []float64
		for i, s := range stats["s3store"] {
			ratios = append(ratios, stats[other.name][i].seconds/s.seconds)
		}
		b.ReportMetric(median(ratios), "s3store/"+other.name+"-median")
		b.ReportMetric(slices.Min(ratios), "s3store/"+other.name+"-min")
		b.ReportMetric(slices.Max(ratios), "s3store/"+other.name+"-max")
	}
	b.ReportMetric(float64(partSize)*float64(concurrency)/mib, "partsize*concurrency-MiB")
}
