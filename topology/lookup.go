package topology

import (
	"cmp"
	"slices"
	"time"
)

// CA returns the CertificateAuthority called name, or nil.
func (t *Topology) CA(name string) *CertificateAuthority { return find(t.CAs, name, caName) }

// Certificate returns the Certificate called name, or nil.
func (t *Topology) Certificate(name string) *Certificate {
	return find(t.Certificates, name, func(c *Certificate) string { return c.Metadata.Name })
}

// KeyPair returns the KeyPair called name, or nil.
func (t *Topology) KeyPair(name string) *KeyPair {
	return find(t.KeyPairs, name, func(k *KeyPair) string { return k.Metadata.Name })
}

// Kubeconfig returns the Kubeconfig called name, or nil.
func (t *Topology) Kubeconfig(name string) *Kubeconfig {
	return find(t.Kubeconfigs, name, func(k *Kubeconfig) string { return k.Metadata.Name })
}

// TrustBundle returns the TrustBundle called name, or nil.
func (t *Topology) TrustBundle(name string) *TrustBundle {
	return find(t.TrustBundles, name, func(b *TrustBundle) string { return b.Metadata.Name })
}

// Preset returns the Preset called name, or nil.
func (t *Topology) Preset(name string) *Preset {
	return find(t.Presets, name, func(p *Preset) string { return p.Metadata.Name })
}

// Cluster returns the named cluster from the Config, defaulted. A cluster the
// Config does not list (valid only while it lists none) gets every default,
// so callers never need to handle "not found".
func (t *Topology) Cluster(name string) Cluster {
	for _, c := range t.Config.Spec.Clusters {
		if c.Name == name {
			defaultCluster(&c)
			t.defaultDelivery(&c)
			return c
		}
	}
	c := Cluster{Name: name}
	defaultCluster(&c)
	t.defaultDelivery(&c)
	return c
}

// CAOrder returns every CA with each issuer before the CAs it signs, so signing
// in this order always finds the issuer ready. Among CAs whose issuers are
// already placed, names decide, so the order is stable. CAs caught in an issuer
// cycle (which validation rejects) come last, by name.
func (t *Topology) CAOrder() []*CertificateAuthority {
	byName := map[string]*CertificateAuthority{}
	for _, ca := range t.CAs {
		byName[ca.Metadata.Name] = ca
	}
	children := map[string][]*CertificateAuthority{}
	var ready []*CertificateAuthority
	for _, ca := range t.CAs {
		if iss := ca.Spec.Issuer; iss != "" && byName[iss] != nil {
			children[iss] = append(children[iss], ca)
		} else {
			ready = append(ready, ca)
		}
	}
	out := make([]*CertificateAuthority, 0, len(t.CAs))
	placed := map[*CertificateAuthority]bool{}
	for len(ready) > 0 {
		slices.SortFunc(ready, func(a, b *CertificateAuthority) int { return cmp.Compare(caName(a), caName(b)) })
		next := ready[0]
		ready = ready[1:]
		if placed[next] { // only possible with duplicate names, which validation rejects
			continue
		}
		out = append(out, next)
		placed[next] = true
		ready = append(ready, children[next.Metadata.Name]...)
	}
	var rest []*CertificateAuthority
	for _, ca := range t.CAs {
		if !placed[ca] {
			rest = append(rest, ca)
		}
	}
	slices.SortFunc(rest, func(a, b *CertificateAuthority) int { return cmp.Compare(caName(a), caName(b)) })
	return append(out, rest...)
}

// Get returns the policy's durations; a policy that Default has filled always has both.
func (p ValidityPolicy) Get() (validity, renewBefore time.Duration) {
	if p.Validity != nil {
		validity = p.Validity.Duration
	}
	if p.RenewBefore != nil {
		renewBefore = p.RenewBefore.Duration
	}
	return validity, renewBefore
}

func caName(c *CertificateAuthority) string { return c.Metadata.Name }

func find[T any](items []*T, name string, nameOf func(*T) string) *T {
	for _, it := range items {
		if nameOf(it) == name {
			return it
		}
	}
	return nil
}
