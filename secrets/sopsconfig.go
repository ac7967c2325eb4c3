package secrets

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// CreationRule is one .sops.yaml creation rule: files whose path matches
// PathRegex are encrypted to the Age recipients.
type CreationRule struct {
	PathRegex string
	Age       []string
}

// SopsConfig renders a .sops.yaml whose creation rules make `sops edit` and
// `sops -e` on a state file seal it exactly as gitca does (same recipients,
// same encrypted_regex). Rules keep their order — sops uses the first rule
// whose path_regex matches — while each rule's recipients are sorted and
// de-duplicated, so the same input always gives the same bytes.
func SopsConfig(rules []CreationRule) []byte {
	type rule struct {
		PathRegex      string `yaml:"path_regex"`
		EncryptedRegex string `yaml:"encrypted_regex"`
		Age            string `yaml:"age,omitempty"`
	}
	var doc struct {
		CreationRules []rule `yaml:"creation_rules"`
	}
	doc.CreationRules = []rule{}
	for _, r := range rules {
		rcp, _ := NormalizeRecipients(r.Age) // none: a rule without age keys
		doc.CreationRules = append(doc.CreationRules, rule{
			PathRegex:      r.PathRegex,
			EncryptedRegex: EncryptedRegex,
			Age:            strings.Join(rcp, ","),
		})
	}
	var b strings.Builder
	b.WriteString("# Written by gitca: creation rules for editing state files with the sops CLI.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	// Encoding a plain struct of strings cannot fail.
	_ = enc.Encode(doc)
	_ = enc.Close()
	return []byte(b.String())
}
