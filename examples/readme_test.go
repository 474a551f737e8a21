package examples_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's Go snippet is what users paste first: it must compile
// against the packages as they are. It is built as a main package through
// a go build overlay, so nothing is written into the tree.
func TestReadmeSnippetCompiles(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(b)
	require.NotNil(t, m, "the README has a ```go block")
	snippet := string(m[1])

	pkgs := map[string]string{
		"irsa.": "github.com/irsakit/irsakit/irsa", "rdsauth.": "github.com/irsakit/irsakit/rdsauth",
		"elasticacheauth.": "github.com/irsakit/irsakit/elasticacheauth", "s3store.": "github.com/irsakit/irsakit/s3store",
		"secrets.": "github.com/irsakit/irsakit/secrets", "vaultauth.": "github.com/irsakit/irsakit/vaultauth",
		"os.": "os", "time.": "time", "fmt.": "fmt",
	}
	imports := []string{"context", "log"}
	for prefix, path := range pkgs {
		if regexp.MustCompile(`\b` + regexp.QuoteMeta(prefix)).MatchString(snippet) {
			imports = append(imports, path)
		}
	}
	sort.Strings(imports)

	// Every variable the snippet declares is used, as it would be in a
	// program that goes on.
	body := "package main\nfunc main() {\n" + snippet + "\n}\n"
	f, err := parser.ParseFile(token.NewFileSet(), "snippet.go", body, 0)
	require.NoError(t, err, "the README snippet does not parse:\n%s", snippet)
	var uses []string
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.DEFINE {
			for _, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name != "_" && id.Name != "err" {
					uses = append(uses, "_ = "+id.Name)
				}
			}
		}
		return true
	})

	src := "package main\n\nimport (\n\t\"" + strings.Join(imports, "\"\n\t\"") + "\"\n)\n\n" +
		"func check(err error) {\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n}\n\n" +
		"func main() {\n\tctx := context.Background()\n" + snippet + "\n\t" + strings.Join(uses, "\n\t") + "\n}\n"
	dir := t.TempDir()
	file := filepath.Join(dir, "main.go")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o600))
	wd, err := os.Getwd()
	require.NoError(t, err)
	overlay := filepath.Join(dir, "overlay.json")
	target := filepath.Join(wd, "internal", "readmesnippet", "main.go")
	require.NoError(t, os.WriteFile(overlay, []byte(`{"Replace":{"`+target+`":"`+file+`"}}`), 0o600))
	out, err := exec.Command("go", "build", "-overlay", overlay, "-o", os.DevNull, "./internal/readmesnippet").CombinedOutput()
	require.NoError(t, err, "the README snippet does not compile:\n%s\n--- as built:\n%s", out, src)
}
