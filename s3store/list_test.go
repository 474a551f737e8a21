package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/irsakit/irsakit/s3store"
)

// putMany stores the keys (content = key), 16 at a time.
func putMany(t testing.TB, st *s3store.Store, keys []string) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	var mu sync.Mutex
	var firstErr error
	for _, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := st.Put(ctx, k, strings.NewReader(k)); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func TestListPagination(t *testing.T) {
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "ls/"), func(o *s3store.Options) {
		o.ClientOptions = append(o.ClientOptions, cc.option)
	})
	ctx := context.Background()
	var keys []string
	for i := range 23 {
		keys = append(keys, fmt.Sprintf("ls/f%02d", i))
	}
	keys = append(keys, "ls/d1/x", "ls/d1/y", "ls/d2/z", "ls/e")
	putMany(t, st, keys)
	slices.Sort(keys)

	list := func(prefix string, optFns ...func(*s3store.ListOptions)) (got []string, calls int) {
		t.Helper()
		before := cc.count("ListObjectsV2")
		for o, err := range st.List(ctx, prefix, optFns...) {
			if err != nil {
				t.Fatal(err)
			}
			k := o.Key
			if o.IsPrefix {
				k += "(dir)"
			} else if o.Size != int64(len(o.Key)) || o.ETag == "" || o.LastModified.IsZero() {
				t.Errorf("listed %+v", o)
			}
			got = append(got, k)
		}
		return got, cc.count("ListObjectsV2") - before
	}

	t.Run("all pages", func(t *testing.T) {
		got, calls := list("ls/", func(o *s3store.ListOptions) { o.PageSize = 4 })
		if !slices.Equal(got, keys) {
			t.Errorf("List = %v\nwant %v", got, keys)
		}
		if want := (len(keys) + 3) / 4; calls != want {
			t.Errorf("%d requests for %d keys in pages of 4, want %d", calls, len(keys), want)
		}
	})

	t.Run("lazy", func(t *testing.T) {
		before := cc.count("ListObjectsV2")
		n := 0
		for _, err := range st.List(ctx, "ls/", func(o *s3store.ListOptions) { o.PageSize = 4 }) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 6 {
				break
			}
		}
		if calls := cc.count("ListObjectsV2") - before; calls != 2 {
			t.Errorf("reading 6 entries made %d requests, want 2", calls)
		}
	})

	t.Run("delimiter", func(t *testing.T) {
		got, _ := list("ls/", func(o *s3store.ListOptions) { o.Delimiter = "/"; o.PageSize = 5 })
		var want []string
		for _, k := range keys {
			if !strings.Contains(k[3:], "/") {
				want = append(want, k)
			}
		}
		want = append(want, "ls/d1/(dir)", "ls/d2/(dir)")
		slices.SortFunc(want, func(a, b string) int {
			return strings.Compare(strings.TrimSuffix(a, "(dir)"), strings.TrimSuffix(b, "(dir)"))
		})
		if !slices.Equal(got, want) {
			t.Errorf("List with delimiter = %v\nwant %v", got, want)
		}
	})

	t.Run("start after", func(t *testing.T) {
		got, _ := list("ls/", func(o *s3store.ListOptions) { o.StartAfter = "ls/f20" })
		if want := []string{"ls/f21", "ls/f22"}; !slices.Equal(got, want) {
			t.Errorf("List after ls/f20 = %v, want %v", got, want)
		}
	})

	t.Run("empty", func(t *testing.T) {
		if got, calls := list("ls/nothing/"); len(got) != 0 || calls != 1 {
			t.Errorf("List of an empty prefix = %v in %d requests", got, calls)
		}
	})

	t.Run("bad page size", func(t *testing.T) {
		for _, err := range st.List(ctx, "ls/", func(o *s3store.ListOptions) { o.PageSize = 5000 }) {
			if err == nil || !strings.Contains(err.Error(), "PageSize") {
				t.Errorf("err = %v", err)
			}
		}
	})
}

// TestDeleteMany deletes more than one request's worth of keys and reports
// refused keys one by one.
func TestDeleteMany(t *testing.T) {
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "dm/"), func(o *s3store.Options) {
		o.ClientOptions = append(o.ClientOptions, cc.option)
	})
	ctx := context.Background()
	var keys []string
	for i := range 1003 {
		keys = append(keys, fmt.Sprintf("dm/%04d", i))
	}
	putMany(t, st, keys)

	if err := st.DeleteMany(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if n := cc.count("DeleteObjects"); n != 2 {
		t.Errorf("DeleteObjects requests = %d, want 2 (1000 + 3)", n)
	}
	for o, err := range st.List(ctx, "dm/") {
		t.Fatalf("left after DeleteMany: %v %v", o.Key, err)
	}

	// Keys outside the policy are refused individually; the rest go.
	putMany(t, st, []string{"dm/a", "dm/b"})
	err := st.DeleteMany(ctx, []string{"dm/a", "other/x", "dm/b", "other/y"})
	var de *s3store.DeleteError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v, want *DeleteError", err)
	}
	var refused []string
	for _, k := range de.Keys {
		refused = append(refused, k.Key+":"+k.Code)
	}
	if want := []string{"other/x:AccessDenied", "other/y:AccessDenied"}; !slices.Equal(refused, want) {
		t.Errorf("refused = %v, want %v", refused, want)
	}
	if !errors.Is(err, s3store.ErrAccessDenied) {
		t.Errorf("errors.Is(err, ErrAccessDenied) = false for %v", err)
	}
	for _, k := range []string{"dm/a", "dm/b"} {
		if ok, err := st.Exists(ctx, k); ok || err != nil {
			t.Errorf("%s still exists (%v)", k, err)
		}
	}

	if err := st.DeleteMany(ctx, []string{"dm/x", ""}); err == nil {
		t.Error("an empty key was accepted")
	}
	if err := st.DeleteMany(ctx, nil); err != nil {
		t.Errorf("DeleteMany(nil) = %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = st.DeleteMany(cctx, []string{"dm/q", "dm/r"})
	if !errors.As(err, &de) || len(de.Keys) != 2 || !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteMany on a cancelled context = %v", err)
	}
}
