//lint:file-ignore SA1019 feature/s3/manager is deprecated in favour of feature/s3/transfermanager, which is still v0 (unstable API); manager is the stable, supported transfer manager this module pins.

package s3store_test

import (
	"context"
	"encoding/binary"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/irsakit/irsakit/s3store"
)

// benchSize is the object size of the transfer benchmarks.
const benchSize = 1 << 30

// genReader yields n pseudo-random bytes without holding them: a 1 MiB
// random block repeated, each copy stamped with its index. It is not an
// io.ReaderAt, so uploads take the buffered path, as from a network stream.
type genReader struct {
	block []byte
	off   int64
	n     int64
}

func newGenReader(n int64) *genReader {
	b := make([]byte, 1<<20)
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

// discardAt is an io.WriterAt that drops what it is given.
type discardAt struct{ n atomic.Int64 }

func (d *discardAt) WriteAt(p []byte, _ int64) (int, error) {
	d.n.Add(int64(len(p)))
	return len(p), nil
}

// heapPeak samples the heap's live object bytes until stopped and reports
// the peak: the memory a transfer holds at once.
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			h.peak = max(h.peak, sample[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) report(b *testing.B) {
	close(h.stop)
	h.done.Wait()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
}

// cpuTime is this process's user+system CPU time: the client's work,
// which, unlike wall time, the load of other processes on the machine
// barely changes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTransfer1GiB moves 1 GiB through s3store and through the SDK's
// transfer manager used directly, with the same part size and concurrency
// (the defaults), against versitygw, with credentials from the IRSA path.
// The data is generated as it is sent (a stream, so uploads take the
// buffered path) and downloads go to a discarding io.WriterAt.
//
// upload|download/{s3store,manager} report throughput, the client's CPU
// time, the peak heap during the transfers and the process's memory from
// the OS; upload|download/interleaved alternate the two ways within each
// iteration and report both throughputs and the median of the pairs'
// ratios, the fairest figure on a shared machine.
//
//	go test -run '^$' -bench Transfer1GiB -benchtime 5x -benchmem ./s3store
func BenchmarkTransfer1GiB(b *testing.B) {
	st, cfg := newStoreCfg(b, testBucket, mustPolicy(b, testBucket, "bench/"))
	// The raw SDK way, on the same config.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize, u.Concurrency = s3store.DefaultPartSize, s3store.DefaultConcurrency
	})
	downloader := manager.NewDownloader(client, func(d *manager.Downloader) {
		d.PartSize, d.Concurrency = s3store.DefaultPartSize, s3store.DefaultConcurrency
		// As s3store does: without it the SDK logs a line per ranged part.
		d.ClientOptions = append(d.ClientOptions, func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	})
	ctx := context.Background()
	b.Cleanup(func() {
		_ = st.DeleteMany(context.Background(), []string{"bench/s3store", "bench/manager"})
	})

	upload := map[string]func(key string) error{
		"s3store": func(key string) error {
			_, err := st.Put(ctx, key, newGenReader(benchSize))
			return err
		},
		"manager": func(key string) error {
			_, err := uploader.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: newGenReader(benchSize)})
			return err
		},
	}
	download := map[string]func(key string, w io.WriterAt) (int64, error){
		"s3store": func(key string, w io.WriterAt) (int64, error) { return st.Download(ctx, key, w) },
		"manager": func(key string, w io.WriterAt) (int64, error) {
			return downloader.Download(ctx, w, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
		},
	}
	ways := []string{"s3store", "manager"}

	// Every timed transfer starts with the server's disk quiet: sync
	// flushes the previous transfer's dirty pages, which would otherwise be
	// written back during (and slow down) whichever transfer comes next.
	quiesce := func(b *testing.B) {
		b.StopTimer()
		syscall.Sync()
		b.StartTimer()
	}

	// Interleaved: each iteration runs both ways, alternating which goes
	// first, so drift in machine speed hits both alike; reports each way's
	// throughput and their ratio.
	for _, dir := range []string{"upload", "download"} {
		b.Run(dir+"/interleaved", func(b *testing.B) {
			if dir == "download" {
				for _, way := range ways {
					if obj, err := st.Stat(ctx, "bench/"+way); err != nil || obj.Size != benchSize {
						if err := upload[way]("bench/" + way); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			spent := map[string]time.Duration{}
			var ratios []float64
			b.SetBytes(2 * benchSize)
			b.ResetTimer()
			for i := range b.N {
				order := ways
				if i%2 == 1 {
					order = []string{ways[1], ways[0]}
				}
				took := map[string]time.Duration{}
				for _, way := range order {
					quiesce(b)
					start := time.Now()
					var err error
					if dir == "upload" {
						err = upload[way]("bench/" + way)
					} else {
						var w discardAt
						_, err = download[way]("bench/"+way, &w)
					}
					if err != nil {
						b.Fatal(err)
					}
					took[way] = time.Since(start)
					spent[way] += took[way]
				}
				ratios = append(ratios, took["manager"].Seconds()/took["s3store"].Seconds())
			}
			b.StopTimer()
			mbps := func(way string) float64 { return float64(b.N) * benchSize / 1e6 / spent[way].Seconds() }
			b.ReportMetric(mbps("s3store"), "s3store-MB/s")
			b.ReportMetric(mbps("manager"), "manager-MB/s")
			// The median of the pairs' speed ratios: a burst of load on the
			// machine during one transfer skews one pair, not the figure.
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "s3store/manager-median")
		})
	}

	for _, way := range ways {
		b.Run("upload/"+way, func(b *testing.B) {
			b.SetBytes(benchSize)
			peak := startHeapPeak()
			cpu0 := cpuTime()
			for range b.N {
				quiesce(b)
				if err := upload[way]("bench/" + way); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "client-cpu-s/op")
			peak.report(b)
		})
	}
	for _, way := range ways {
		b.Run("download/"+way, func(b *testing.B) {
			key := "bench/" + way
			if obj, err := st.Stat(ctx, key); err != nil || obj.Size != benchSize {
				if err := upload[way](key); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(benchSize)
			b.ResetTimer()
			peak := startHeapPeak()
			cpu0 := cpuTime()
			for range b.N {
				quiesce(b)
				var w discardAt
				n, err := download[way](key, &w)
				if err != nil || n != benchSize || w.n.Load() != benchSize {
					b.Fatalf("downloaded %d/%d bytes: %v", n, w.n.Load(), err)
				}
			}
			b.StopTimer()
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "client-cpu-s/op")
			peak.report(b)
		})
	}
}
