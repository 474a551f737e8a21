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

	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

// ExampleNew is a program in a pod whose Kubernetes service account is
// annotated with an IAM role (eks.amazonaws.com/role-arn): irsa.Load takes
// the role and the projected token from the pod's environment, and the
// role's policy, from s3store.Policy("my-bucket" with Prefix "reports/"), allows the
// objects under reports/ and nothing else. (When this example runs as a
// test, that environment points at a local S3-compatible server, which
// needs UsePathStyle; on AWS leave it out.)
func ExampleNew() {
	ctx := context.Background()
	sess, err := irsa.Load(ctx)
	if err != nil {
		log.Fatal(err)
	}
	store, err := s3store.New(sess.Config(), "my-bucket", func(o *s3store.Options) {
		o.UsePathStyle = true
		o.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	})
	if err != nil {
		log.Fatal(err)
	}

	// Any io.Reader, of any size: a large one goes up in parts.
	_, err = store.Put(ctx, "reports/2024.csv", strings.NewReader("month,total\njan,42\n"), func(o *s3store.PutOptions) {
		o.ContentType = "text/csv"
	})
	if err != nil {
		log.Fatal(err)
	}
	obj, err := store.Stat(ctx, "reports/2024.csv")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(obj.Key, obj.Size, obj.ContentType, obj.ChecksumAlgorithm)

	r, err := store.Get(ctx, "reports/2024.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	if _, err := io.Copy(os.Stdout, r); err != nil {
		log.Fatal(err)
	}

	// Outside the role's prefix, S3 refuses.
	_, err = store.Get(ctx, "payroll/2024.csv")
	fmt.Println(errors.Is(err, s3store.ErrAccessDenied))
	// Output:
	// reports/2024.csv 19 text/csv SHA256
	// month,total
	// jan,42
	// true
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
