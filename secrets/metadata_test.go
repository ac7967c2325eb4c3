package secrets

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// The tests read what a sealed file says about itself (recipients, MAC,
// policy) the way a reviewer would, from its sops block, without decrypting.

// Metadata is the public part of a file's sops block.
type Metadata struct {
	Recipients       []string // age recipients, sorted, de-duplicated
	LastModified     time.Time
	HasMAC           bool
	EncryptedRegex   string
	MACOnlyEncrypted bool
	Version          string
}

// ReadMetadata reads, without decrypting, the sops block of a sealed file.
func ReadMetadata(sealed []byte) (Metadata, error) {
	var doc struct {
		Sops *struct {
			Age          []struct{ Recipient string }                 `yaml:"age"`
			KeyGroups    []struct{ Age []struct{ Recipient string } } `yaml:"key_groups"`
			LastModified string                                       `yaml:"lastmodified"`
			MAC          string                                       `yaml:"mac"`
			Regex        string                                       `yaml:"encrypted_regex"`
			MACOnly      bool                                         `yaml:"mac_only_encrypted"`
			Version      string                                       `yaml:"version"`
		} `yaml:"sops"`
	}
	if err := yaml.Unmarshal(sealed, &doc); err != nil {
		return Metadata{}, fmt.Errorf("parsing sealed file: %w", err)
	}
	s := doc.Sops
	if s == nil {
		return Metadata{}, ErrNotSealed
	}
	md := Metadata{HasMAC: s.MAC != "", EncryptedRegex: s.Regex, MACOnlyEncrypted: s.MACOnly, Version: s.Version}
	set := map[string]bool{}
	for _, a := range s.Age {
		set[a.Recipient] = true
	}
	for _, g := range s.KeyGroups {
		for _, a := range g.Age {
			set[a.Recipient] = true
		}
	}
	md.Recipients = slices.Sorted(maps.Keys(set))
	if s.LastModified != "" {
		t, err := time.Parse(time.RFC3339, s.LastModified)
		if err != nil {
			return Metadata{}, fmt.Errorf("sops.lastmodified: %w", err)
		}
		md.LastModified = t
	}
	return md, nil
}
