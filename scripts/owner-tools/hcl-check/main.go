// hcl-check checks Terraform files with HashiCorp's own HCL parser, without Terraform: each FILE
// must parse and, for native syntax, be canonically formatted (hclwrite.Format leaves it byte for
// byte unchanged), which is what `terraform fmt -check` checks. terraform fmt also makes a few
// Terraform-specific rewrites that hclwrite.Format does not ("${var.x}" alone to var.x, quoted
// type constraints), so a file can pass here that terraform fmt would still change.
//
//	hcl-check FILE...
//
// FILE ending in .json (so also .tf.json) is read as HCL's JSON syntax, which has no canonical
// format to check; any other FILE (.tf, .tfvars, .hcl) as native syntax. Diagnostics go to
// stdout as FILE:LINE:COL: message, a formatting difference as "FILE: not canonically
// formatted" and the first differing lines. Exit codes: 0 all good, 1 a file failed, 2 usage.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// How many differing lines a formatting hint shows; the first few say what to fix.
const hintLines = 5

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: hcl-check FILE...\n"+
			"  each FILE must parse (FILE.json and FILE.tf.json as HCL JSON syntax, others as native\n"+
			"  syntax) and native files must be canonically formatted, as terraform fmt writes them")
		os.Exit(2)
	}
	failed := false
	for _, name := range os.Args[1:] {
		if !check(os.Stdout, name) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// check reports what is wrong with one file to w and says whether the file is good.
func check(w io.Writer, name string) bool {
	src, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return false
	}
	// A new parser per file: a parser caches files by name and would answer a repeated name
	// from its cache.
	parser := hclparse.NewParser()
	json := strings.HasSuffix(name, ".json")
	var diags hcl.Diagnostics
	if json {
		_, diags = parser.ParseJSON(src, name)
	} else {
		_, diags = parser.ParseHCL(src, name)
	}
	for _, d := range diags {
		fmt.Fprintln(w, describe(name, d))
	}
	if diags.HasErrors() {
		return false
	}
	if json {
		return true
	}
	formatted := hclwrite.Format(src)
	if bytes.Equal(formatted, src) {
		return true
	}
	fmt.Fprintf(w, "%s: not canonically formatted\n", name)
	hint(w, name, src, formatted)
	return false
}

// describe renders a diagnostic as FILE:LINE:COL: severity: summary; detail.
func describe(name string, d *hcl.Diagnostic) string {
	where := name
	if d.Subject != nil {
		where = fmt.Sprintf("%s:%d:%d", name, d.Subject.Start.Line, d.Subject.Start.Column)
	}
	severity := "error"
	if d.Severity == hcl.DiagWarning {
		severity = "warning"
	}
	message := d.Summary
	if d.Detail != "" {
		message += "; " + d.Detail
	}
	return fmt.Sprintf("%s: %s: %s", where, severity, message)
}

// hint prints the first lines that formatting changes, as "-" (the file) and "+" (canonical)
// pairs with their line numbers. hclwrite.Format changes spacing within lines and never adds or
// removes a line, so comparing line by line finds each change where it is.
func hint(w io.Writer, name string, src, formatted []byte) {
	have := strings.Split(string(src), "\n")
	want := strings.Split(string(formatted), "\n")
	shown := 0
	for i := 0; i < len(have) || i < len(want); i++ {
		var h, c string
		if i < len(have) {
			h = have[i]
		}
		if i < len(want) {
			c = want[i]
		}
		if h == c {
			continue
		}
		if shown == hintLines {
			fmt.Fprintf(w, "  ... (more lines differ; hclwrite.Format, or terraform fmt, rewrites them)\n")
			return
		}
		fmt.Fprintf(w, "  %s:%d\n  - %q\n  + %q\n", name, i+1, h, c)
		shown++
	}
}
