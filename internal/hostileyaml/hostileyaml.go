// Package hostileyaml writes the YAML documents the hostile-input tests feed
// gitca: small files that expand to billions of values or nest without end.
// The topology loader's tests and the CLI's hostile topology repos share them.
package hostileyaml

import (
	"fmt"
	"strings"
)

// Header starts a document the loader takes for a CertificateAuthority, so
// the hostile part is reached by the decoder and not refused as unknown.
const Header = "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\n"

// MergeBomb is a small file whose merge keys name one mapping 9^levels times.
func MergeBomb(levels int) string {
	var b strings.Builder
	b.WriteString(Header + "metadata: {name: x}\nl0: &a0 {k: v}\n")
	for i := 1; i <= levels; i++ {
		p := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "l%d: &a%d {<<: [%s]}\n", i, i, strings.Repeat(p+",", 8)+p)
	}
	fmt.Fprintf(&b, "spec:\n  <<: *a%d\n", levels)
	return b.String()
}

// Laughs is the classic billion-laughs document: each collection names the
// previous one ten times; open and close are "[" "]" or "{" "}".
func Laughs(levels int, open, close string) string {
	var b strings.Builder
	b.WriteString(Header + "metadata: {name: x}\nspec:\n  l0: &l0 " + open + "lol" + close + "\n")
	for i := 1; i <= levels; i++ {
		p := fmt.Sprintf("*l%d", i-1)
		items := make([]string, 10)
		for j := range items {
			items[j] = p
			if open == "{" {
				items[j] = fmt.Sprintf("k%d: %s", j, p)
			}
		}
		fmt.Fprintf(&b, "  l%d: &l%d %s%s%s\n", i, i, open, strings.Join(items, ", "), close)
	}
	return b.String()
}

// AliasChain nests one value deeper with every alias, each level written flat.
func AliasChain(levels int) string {
	var b strings.Builder
	b.WriteString(Header + "metadata: {name: x}\nspec:\n  l0: &l0 [x]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  l%d: &l%d [*l%d]\n", i, i, i-1)
	}
	return b.String()
}

// DeepBlock nests block mappings levels deep, one space more each.
func DeepBlock(levels int) string {
	var b strings.Builder
	b.WriteString(Header + "metadata:\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "%sn:\n", strings.Repeat(" ", i))
	}
	return b.String()
}
