package s3store

import (
	"context"
	"fmt"
	"iter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListOptions configure one List.
type ListOptions struct {
	// Delimiter groups keys sharing a prefix up to the delimiter into one
	// IsPrefix entry ("/" lists one directory level). Default "": all keys.
	Delimiter string
	// StartAfter starts after this key.
	StartAfter string
	// PageSize is the number of entries per ListObjectsV2 request, 1 to
	// 1000. Default 0: the server's, 1000 on AWS.
	PageSize int32
	// ClientOptions apply to the SDK calls.
	ClientOptions []func(*s3.Options)
}

// List iterates over the objects whose keys begin with prefix, in key
// order, fetching pages lazily: a page is requested only when the loop
// reaches it, and breaking out of the loop requests nothing more. With a
// Delimiter, common prefixes appear in order among the objects as entries
// with IsPrefix set. An error ends the iteration as its last pair.
func (s *Store) List(ctx context.Context, prefix string, optFns ...func(*ListOptions)) iter.Seq2[Object, error] {
	var lo ListOptions
	for _, fn := range optFns {
		fn(&lo)
	}
	return func(yield func(Object, error) bool) {
		if lo.PageSize < 0 || lo.PageSize > 1000 {
			yield(Object{}, fmt.Errorf("s3store: PageSize %d must be between 1 and 1000", lo.PageSize))
			return
		}
		in := &s3.ListObjectsV2Input{
			Bucket:     aws.String(s.bucket),
			Prefix:     nonEmpty(prefix),
			Delimiter:  nonEmpty(lo.Delimiter),
			StartAfter: nonEmpty(lo.StartAfter),
		}
		if lo.PageSize > 0 {
			in.MaxKeys = aws.Int32(lo.PageSize)
		}
		pages := s3.NewListObjectsV2Paginator(s.client, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx, lo.ClientOptions...)
			if err != nil {
				yield(Object{}, wrapErr("list", s.bucket, prefix, err))
				return
			}
			// Both lists are in key order; merge them.
			objs, dirs := page.Contents, page.CommonPrefixes
			for len(objs) > 0 || len(dirs) > 0 {
				var o Object
				if len(dirs) == 0 || (len(objs) > 0 && aws.ToString(objs[0].Key) < aws.ToString(dirs[0].Prefix)) {
					o = listed(objs[0])
					objs = objs[1:]
				} else {
					o = Object{Key: aws.ToString(dirs[0].Prefix), IsPrefix: true}
					dirs = dirs[1:]
				}
				if !yield(o, nil) {
					return
				}
			}
		}
	}
}

func listed(o types.Object) Object {
	obj := Object{
		Key:          aws.ToString(o.Key),
		Size:         aws.ToInt64(o.Size),
		ETag:         aws.ToString(o.ETag),
		LastModified: aws.ToTime(o.LastModified),
		StorageClass: types.StorageClass(o.StorageClass),
		ChecksumType: o.ChecksumType,
	}
	if len(o.ChecksumAlgorithm) > 0 {
		obj.ChecksumAlgorithm = o.ChecksumAlgorithm[0]
	}
	return obj
}
