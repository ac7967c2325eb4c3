package topology

import (
	"cmp"
	"time"
)

// Built-in defaults, used where neither an object nor the Config says otherwise.
const (
	DefaultKeyAlgorithm  = ECDSAP256
	DefaultCAValidity    = 87600 * time.Hour // ten years
	DefaultCARenewBefore = 720 * time.Hour   // thirty days
	DefaultLeafValidity  = 8760 * time.Hour  // one year; renewed a third before it ends
	DefaultNamespace     = "default"
	DefaultFlavour       = FlavourFlux
)

// Default fills every field left empty with its default: first the Config,
// then each object from the Config's policies. It is meant to run after
// presets are expanded, so generated objects are defaulted like written ones,
// and it never overwrites a value that is already set.
func (t *Topology) Default() {
	d := &t.Config.Spec.Defaults
	// A leaf policy without renewBefore means "a third of the validity", which
	// must stay proportional for objects that set their own validity; remember
	// that before the Config's own renewBefore is filled in.
	leafProportional := d.Leaf.RenewBefore == nil
	if d.KeyAlgorithm == "" {
		d.KeyAlgorithm = DefaultKeyAlgorithm
	}
	caPolicy := ValidityPolicy{Validity: NewDuration(DefaultCAValidity), RenewBefore: NewDuration(DefaultCARenewBefore)}
	fillValidity(&d.CA, caPolicy, false)
	fillValidity(&d.Leaf, ValidityPolicy{Validity: NewDuration(DefaultLeafValidity)}, true)
	for i := range t.Config.Spec.Clusters {
		defaultCluster(&t.Config.Spec.Clusters[i])
	}

	for _, ca := range t.CAs {
		s := &ca.Spec
		s.Subject.CommonName = cmp.Or(s.Subject.CommonName, ca.Metadata.Name)
		s.KeyAlgorithm = cmp.Or(s.KeyAlgorithm, d.KeyAlgorithm)
		fillValidity(&s.ValidityPolicy, d.CA, false)
		s.RotationPolicy = cmp.Or(s.RotationPolicy, RotateNever)
		if s.Secret != nil {
			t.defaultSecretRef(s.Secret, ca.Metadata.Name)
		}
	}
	for _, c := range t.Certificates {
		s := &c.Spec
		s.Subject.CommonName = cmp.Or(s.Subject.CommonName, c.Metadata.Name)
		s.KeyAlgorithm = cmp.Or(s.KeyAlgorithm, d.KeyAlgorithm)
		fillValidity(&s.ValidityPolicy, d.Leaf, leafProportional)
		s.RotationPolicy = cmp.Or(s.RotationPolicy, RotateAlways)
		t.defaultSecretRef(&s.Secret, c.Metadata.Name)
	}
	for _, kp := range t.KeyPairs {
		kp.Spec.KeyAlgorithm = cmp.Or(kp.Spec.KeyAlgorithm, d.KeyAlgorithm)
		t.defaultSecretRef(&kp.Spec.Secret, kp.Metadata.Name)
	}
	for _, k := range t.Kubeconfigs {
		s := &k.Spec
		s.KeyAlgorithm = cmp.Or(s.KeyAlgorithm, d.KeyAlgorithm)
		fillValidity(&s.ValidityPolicy, d.Leaf, leafProportional)
		s.RotationPolicy = cmp.Or(s.RotationPolicy, RotateAlways)
		t.defaultSecretRef(&s.Secret, k.Metadata.Name)
		s.Target.Name = cmp.Or(s.Target.Name, k.Metadata.Name)
		if len(s.Contexts) == 0 {
			s.Contexts = []ContextSpec{{Name: k.Metadata.Name}}
		}
	}
	for _, b := range t.TrustBundles {
		if b.Spec.ConfigMap != nil {
			t.defaultSecretRef(b.Spec.ConfigMap, b.Metadata.Name)
		}
		if b.Spec.Secret != nil {
			t.defaultSecretRef(b.Spec.Secret, b.Metadata.Name)
		}
	}
}

// fillValidity completes p from def. An object that sets its own validity but
// no renewBefore renews a third before the end when the default is
// proportional, or when the default's fixed renewBefore would not fit inside
// the shorter validity; otherwise it inherits the default's renewBefore, so
// spelling out the default validity changes nothing.
func fillValidity(p *ValidityPolicy, def ValidityPolicy, proportional bool) {
	ownValidity := p.Validity != nil
	if p.Validity == nil {
		p.Validity = NewDuration(def.Validity.Duration)
	}
	if p.RenewBefore != nil {
		return
	}
	v := p.Validity.Duration
	switch {
	case def.RenewBefore == nil || (ownValidity && proportional):
		p.RenewBefore = NewDuration(v / 3)
	case def.RenewBefore.Duration >= v:
		p.RenewBefore = NewDuration(v / 3)
	default:
		p.RenewBefore = NewDuration(def.RenewBefore.Duration)
	}
}

func defaultCluster(c *Cluster) {
	c.Flavour = cmp.Or(c.Flavour, DefaultFlavour)
	c.Namespace = cmp.Or(c.Namespace, DefaultNamespace)
}

func (t *Topology) defaultSecretRef(r *SecretRef, name string) {
	r.Namespace = cmp.Or(r.Namespace, t.Cluster(r.Cluster).Namespace)
	r.Name = cmp.Or(r.Name, name)
}
