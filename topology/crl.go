package topology

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// CRLPolicy makes a CA publish a certificate revocation list signed with its
// key: the serials of the certificates it issued that left the topology
// while still valid, each until that certificate expires. etcd reads one
// (--client-crl-file) on every connection; Kubernetes reads none, which is
// what CA rotation is for. Written `crl: true` for the defaults, or as a
// mapping of its fields.
type CRLPolicy struct {
	// Validity is how long one list is current: its nextUpdate is this long
	// after its thisUpdate. Default 720h.
	Validity *Duration `json:"validity,omitempty"`
	// RenewBefore is how long before nextUpdate a new list is signed, so
	// verifiers that check nextUpdate never see a stale one; default a third
	// of the validity.
	RenewBefore *Duration `json:"renewBefore,omitempty"`

	// off is `crl: false`, which Default turns into no policy at all.
	off bool
}

// DefaultCRLValidity is a CRL's default lifetime: renewed a third before its
// end, it makes one commit every twenty days.
const DefaultCRLValidity = 720 * time.Hour

// UnmarshalYAML takes `true` (the defaults), `false` (none) or a mapping of
// validity and renewBefore.
func (c *CRLPolicy) UnmarshalYAML(n *yaml.Node) error {
	const want = "expected true, false, or a mapping with validity and renewBefore"
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
		var on bool
		if err := n.Decode(&on); err != nil {
			return fmt.Errorf("%s, got %s", want, kindName(n))
		}
		c.off = !on
		return nil
	case n.Kind != yaml.MappingNode:
		return fmt.Errorf("%s, got %s", want, kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var d Duration
		switch key {
		case "validity":
			c.Validity = &d
		case "renewBefore":
			c.RenewBefore = &d
		default:
			return fmt.Errorf("unknown field %q in crl (allowed: renewBefore, validity)", key)
		}
		if err := d.UnmarshalYAML(val); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// Get is the policy's validity and renewBefore after defaulting.
func (c *CRLPolicy) Get() (validity, renewBefore time.Duration) {
	return ValidityPolicy{Validity: c.Validity, RenewBefore: c.RenewBefore}.Get()
}

// defaultCRL fills a CA's CRL policy, or removes one written `crl: false`.
func defaultCRL(s *CASpec) {
	switch {
	case s.CRL == nil:
	case s.CRL.off:
		s.CRL = nil
	default:
		if s.CRL.Validity == nil {
			s.CRL.Validity = NewDuration(DefaultCRLValidity)
		}
		if s.CRL.RenewBefore == nil {
			s.CRL.RenewBefore = NewDuration(s.CRL.Validity.Duration / 3)
		}
	}
}

// crl checks a CA's CRL policy after defaulting.
func (v *validator) crl(o object, s *CASpec) {
	if s.CRL == nil {
		return
	}
	if s.Import != nil && s.Import.Key == "" {
		v.add(o, "spec.crl", "an offline CA (imported without its key) cannot sign a revocation list here",
			"remove crl, or import the key with spec.import.key")
	}
	v.validity(o, "spec.crl.", ValidityPolicy{Validity: s.CRL.Validity, RenewBefore: s.CRL.RenewBefore})
}
