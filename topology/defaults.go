package topology

import (
	"cmp"
	"fmt"
	"strings"
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

	DefaultFluxSourceKind       = "GitRepository"
	DefaultFluxSourceName       = "gitca-state"
	DefaultFluxNamespace        = "flux-system"
	DefaultFluxInterval         = 10 * time.Minute
	DefaultFluxRetryInterval    = 2 * time.Minute
	DefaultFluxTimeout          = 5 * time.Minute
	DefaultFluxDecryptionSecret = "sops-age"
	DefaultStateBranch          = "main"
	DefaultStateInterval        = time.Minute
	DefaultArgoCDRevision       = "HEAD"
	DefaultArgoCDProject        = "default"
	DefaultArgoCDNamespace      = "argocd"
)

// Config annotations that held the Flux and Argo CD settings before
// spec.clusters[].flux and .argocd; read once more, with a warning.
const (
	AnnotationFluxSource     = "gitca.dev/flux-source" // [namespace/]name of a GitRepository
	AnnotationFluxDecryption = "gitca.dev/flux-decryption-secret"
	AnnotationFluxInterval   = "gitca.dev/flux-interval"
	AnnotationArgoRepoURL    = "gitca.dev/argocd-repo-url"
	AnnotationArgoRevision   = "gitca.dev/argocd-revision"
	AnnotationArgoProject    = "gitca.dev/argocd-project"
	AnnotationArgoNamespace  = "gitca.dev/argocd-namespace"
)

// legacyAnnotations maps each deprecated annotation to the field that replaces it.
var legacyAnnotations = map[string]string{
	AnnotationFluxSource:     "flux.source",
	AnnotationFluxDecryption: "flux.decryptionSecret",
	AnnotationFluxInterval:   "flux.interval",
	AnnotationArgoRepoURL:    "argocd.repoURL",
	AnnotationArgoRevision:   "argocd.revision",
	AnnotationArgoProject:    "argocd.project",
	AnnotationArgoNamespace:  "argocd.namespace",
}

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
	if r := t.Config.Spec.StateRepository; r != nil {
		r.Branch = cmp.Or(r.Branch, DefaultStateBranch)
		if r.Interval == nil {
			r.Interval = NewDuration(DefaultStateInterval)
		}
	}
	for i := range t.Config.Spec.Clusters {
		defaultCluster(&t.Config.Spec.Clusters[i])
		t.defaultDelivery(&t.Config.Spec.Clusters[i])
	}

	for _, ca := range t.CAs {
		s := &ca.Spec
		s.Subject.CommonName = cmp.Or(s.Subject.CommonName, ca.Metadata.Name)
		s.KeyAlgorithm = cmp.Or(s.KeyAlgorithm, d.KeyAlgorithm)
		fillValidity(&s.ValidityPolicy, d.CA, false)
		s.RotationPolicy = cmp.Or(s.RotationPolicy, RotateNever)
		defaultCRL(s)
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
		t.defaultSecretRef(&s.Secret, cmp.Or(s.MergeInto, k.Metadata.Name))
		s.Target.Name = cmp.Or(s.Target.Name, k.Metadata.Name)
		// A member of a merged kubeconfig may bring its user alone (kcp's
		// "user" has credentials in admin.kubeconfig but no context).
		if len(s.Contexts) == 0 && s.MergeInto == "" {
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

// defaultDelivery fills a cluster's Flux, Argo CD and namespace settings:
// typed fields first, then the deprecated Config annotations, then the
// built-in defaults. flux.path stays empty unless set: where an overlay lives
// is the state layout's to say.
func (t *Topology) defaultDelivery(c *Cluster) {
	legacy := func(k string) string { return strings.TrimSpace(t.Config.Metadata.Annotations[k]) }
	f := &c.Flux
	if f.Source == (FluxSourceRef{}) {
		// The annotation names a GitRepository, in flux-system unless it says otherwise.
		if ns, name, ok := strings.Cut(legacy(AnnotationFluxSource), "/"); ok {
			f.Source.Namespace, f.Source.Name = ns, name
		} else {
			f.Source.Name = ns
		}
	}
	f.Source.Kind = cmp.Or(f.Source.Kind, DefaultFluxSourceKind)
	f.Source.Name = cmp.Or(f.Source.Name, DefaultFluxSourceName)
	f.Source.Namespace = cmp.Or(f.Source.Namespace, DefaultFluxNamespace)
	if f.Interval == nil {
		f.Interval = NewDuration(DefaultFluxInterval)
		// An invalid annotation is reported by validation; the default stands in meanwhile.
		if d, err := ParseDuration(legacy(AnnotationFluxInterval)); err == nil {
			f.Interval = NewDuration(d)
		}
	}
	if f.RetryInterval == nil {
		f.RetryInterval = NewDuration(DefaultFluxRetryInterval)
	}
	if f.Timeout == nil {
		f.Timeout = NewDuration(DefaultFluxTimeout)
	}
	f.DecryptionSecret = cmp.Or(f.DecryptionSecret, legacy(AnnotationFluxDecryption), DefaultFluxDecryptionSecret)

	a := &c.ArgoCD
	a.RepoURL = cmp.Or(a.RepoURL, legacy(AnnotationArgoRepoURL))
	if r := t.Config.Spec.StateRepository; r != nil {
		a.RepoURL = cmp.Or(a.RepoURL, r.URL)
	}
	a.Revision = cmp.Or(a.Revision, legacy(AnnotationArgoRevision), DefaultArgoCDRevision)
	a.Project = cmp.Or(a.Project, legacy(AnnotationArgoProject), DefaultArgoCDProject)
	a.Namespace = cmp.Or(a.Namespace, legacy(AnnotationArgoNamespace), DefaultArgoCDNamespace)

	if c.Namespaces.Manage == nil {
		manage := true
		c.Namespaces.Manage = &manage
	}
}

// legacyWarnings names each deprecated annotation the Config still sets.
func (t *Topology) legacyWarnings() []string {
	var ws ErrorList
	c := &t.Config
	for k := range c.Metadata.Annotations {
		field, ok := legacyAnnotations[k]
		if !ok {
			continue
		}
		f := "metadata.annotations." + k
		ws = append(ws, &FieldError{Pos: c.Origin.At(f), Field: f,
			Msg:     fmt.Sprintf("deprecated: set spec.clusters[].%s instead (it wins where both are set)", field),
			Allowed: "the annotation applies to every cluster that does not set the field"})
	}
	ws.Sort()
	var out []string
	for _, w := range ws {
		out = append(out, w.Error())
	}
	return out
}

func (t *Topology) defaultSecretRef(r *SecretRef, name string) {
	r.Namespace = cmp.Or(r.Namespace, t.Cluster(r.Cluster).Namespace)
	r.Name = cmp.Or(r.Name, name)
}
