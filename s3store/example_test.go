package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/irsakit/irsakit/s3store"
)

func ExampleNew() {
	ctx := context.Background()
	// In a pod with IRSA, the config carries the role's credentials
	// (irsa.Load(ctx) returns a session whose Config() is used the same way).
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store, err := s3store.New(cfg, "my-bucket", func(o *s3store.Options) {
		o.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		o.SSEKMSKeyID = "alias/app-data"
		o.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	})
	if err != nil {
		log.Fatal(err)
	}

	f, err := os.Open("report.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	// Any size: large files go up in parts, read in place.
	if _, err := store.Put(ctx, "reports/2024.csv", f, func(o *s3store.PutOptions) {
		o.ContentType = "text/csv"
	}); err != nil {
		log.Fatal(err)
	}

	r, err := store.Get(ctx, "reports/2024.csv")
	switch {
	case errors.Is(err, s3store.ErrNotFound):
		log.Print("no report yet")
	case errors.Is(err, s3store.ErrAccessDenied):
		log.Fatalf("the role may not read reports: %v", err)
	case err != nil:
		log.Fatal(err)
	default:
		defer r.Close()
		_, _ = io.Copy(os.Stdout, r)
	}
}

func ExampleStore_List() {
	ctx := context.Background()
	cfg, _ := config.LoadDefaultConfig(ctx)
	store, _ := s3store.New(cfg, "my-bucket")

	// One "directory" level; pages are fetched as the loop goes.
	for obj, err := range store.List(ctx, "reports/", func(o *s3store.ListOptions) { o.Delimiter = "/" }) {
		if err != nil {
			log.Fatal(err)
		}
		if obj.IsPrefix {
			fmt.Println("dir ", obj.Key)
			continue
		}
		fmt.Println(obj.Key, obj.Size)
	}
}

func ExamplePolicy() {
	doc, err := s3store.Policy("my-bucket", func(o *s3store.PolicyOptions) { o.Prefix = "tenant-42" })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(doc))
	// Output:
	// {
	//   "Version": "2012-10-17",
	//   "Statement": [
	//     {
	//       "Sid": "ListPrefix",
	//       "Effect": "Allow",
	//       "Action": "s3:ListBucket",
	//       "Resource": "arn:aws:s3:::my-bucket",
	//       "Condition": {
	//         "StringLike": {
	//           "s3:prefix": "tenant-42/*"
	//         }
	//       }
	//     },
	//     {
	//       "Sid": "Objects",
	//       "Effect": "Allow",
	//       "Action": [
	//         "s3:GetObject",
	//         "s3:PutObject",
	//         "s3:DeleteObject"
	//       ],
	//       "Resource": "arn:aws:s3:::my-bucket/tenant-42/*"
	//     }
	//   ]
	// }
}

func ExamplePresigned() {
	ctx := context.Background()
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(
			"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session-token"),
		BaseEndpoint: aws.String("https://s3.example.com"),
	}
	store, err := s3store.New(cfg, "my-bucket", func(o *s3store.Options) { o.UsePathStyle = true })
	if err != nil {
		log.Fatal(err)
	}
	p, err := store.PresignGet(ctx, "reports/q3.pdf", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	// Printing never reveals the signature or the session token...
	printed := fmt.Sprintf("%v", p)
	fmt.Println(printed[:strings.Index(printed, " (presigned")])
	fmt.Println(strings.Contains(printed+fmt.Sprintf("%#v %+v", p, p), "session-token"))
	// ...URL() is what you hand to the client.
	fmt.Println(strings.Contains(p.URL(), "X-Amz-Signature="))
	// Output:
	// GET https://s3.example.com/my-bucket/reports/q3.pdf?REDACTED
	// false
	// true
}
