package apply

import (
	"crypto/x509"
	"fmt"
	"maps"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
)

// secretManifest is a Kubernetes Secret as gitca renders it. Values go under
// stringData so that certificates stay readable PEM in a pull request; sops
// encrypts the private ones (secrets.EncryptedRegex) in place.
type secretManifest struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Type       string            `json:"type"`
	Metadata   plan.Meta         `json:"metadata"`
	StringData map[string]string `json:"stringData"`
}

// doc is the manifest as data for sealing (secrets.SealDoc): the same fields,
// names and omissions as its JSON form, which sigs.k8s.io/yaml would render.
func (s *secretManifest) doc() secrets.Doc {
	meta := secrets.Doc{"name": s.Metadata.Name}
	if s.Metadata.Namespace != "" {
		meta["namespace"] = s.Metadata.Namespace
	}
	if len(s.Metadata.Labels) > 0 {
		meta["labels"] = s.Metadata.Labels
	}
	if len(s.Metadata.Annotations) > 0 {
		meta["annotations"] = s.Metadata.Annotations
	}
	var data any // a nil map is JSON's null
	if s.StringData != nil {
		data = s.StringData
	}
	return secrets.Doc{"apiVersion": s.APIVersion, "kind": s.Kind, "type": s.Type, "metadata": meta, "stringData": data}
}

// objectAnnotations are the plain, MAC-covered fields planning reads.
func objectAnnotations(d *plan.Desired, m *Material, role string) map[string]string {
	var pub []byte
	if m.Cert == nil && m.Key != nil {
		pub, _ = sign.EncodePublicKeyPEM(m.Key.Public())
		if m.keys != nil {
			// Workloads that verify tokens roll when the verify list changes.
			for _, k := range m.keys.verify {
				b, _ := sign.EncodePublicKeyPEM(k)
				pub = append(pub, b...)
			}
		}
	}
	return plan.RecordAnnotations(d, role, m.Cert, m.Chain, pub)
}

// renderFiles builds the object's manifests and seals them, by path.
func (ap *Applier) renderFiles(a *plan.Action, m *Material) (map[string]*state.Object, error) {
	d := a.Desired
	files := map[string]*state.Object{}
	var keyPEM []byte
	if m.Key != nil || (d.Kind != plan.KindCA && d.Kind != plan.KindMergedKubeconfig) {
		var err error
		if keyPEM, err = sign.EncodePrivateKeyPEM(m.Key); err != nil {
			return nil, err
		}
	}
	primary := &secretManifest{APIVersion: "v1", Kind: "Secret"}
	primary.Metadata.Labels = plan.ManagedLabels()
	primary.Metadata.Annotations = objectAnnotations(d, m, state.RolePrimary)
	switch d.Kind {
	case plan.KindCA:
		primary.Type = "kubernetes.io/tls"
		primary.Metadata.Name = d.Name
		// A CA's tls.crt is that CA alone: kcp and its chart use it directly as a
		// client-CA file, and a parent in there would become a trust anchor.
		// A CA signed offline has none while its request waits.
		primary.StringData = map[string]string{}
		if m.Cert != nil {
			primary.StringData["tls.crt"] = string(sign.EncodeCertsPEM(m.Cert))
			primary.StringData["ca.crt"] = string(sign.EncodeCertsPEM(ap.caCerts(d, m)...))
		}
		if len(m.csr) > 0 {
			primary.StringData[plan.KeyCSR] = string(m.csr)
		}
		crl, err := ap.crl(a, m)
		if err != nil {
			return nil, err
		}
		if crl != "" {
			primary.StringData[plan.KeyCRL] = crl
		}
		// An offline root (imported without its key) is recorded for trust only.
		if keyPEM != nil {
			primary.StringData["tls.key"] = string(keyPEM)
		}
	case plan.KindCert:
		primary.Type = "kubernetes.io/tls"
		primary.Metadata.Name, primary.Metadata.Namespace = d.Secret.Name, d.Secret.Namespace
		primary.StringData = map[string]string{
			"tls.crt": string(sign.EncodeCertsPEM(append([]*x509.Certificate{m.Cert}, intermediates(m)...)...)),
			"tls.key": string(keyPEM),
			"ca.crt":  string(sign.EncodeCertsPEM(ap.caCerts(d, m)...)),
		}
	case plan.KindKeyPair:
		pub, err := sign.EncodePublicKeyPEM(m.Key.Public())
		if err != nil {
			return nil, err
		}
		primary.Type = "Opaque"
		primary.Metadata.Name, primary.Metadata.Namespace = d.Secret.Name, d.Secret.Namespace
		primary.StringData = map[string]string{"tls.key": string(keyPEM), "tls.pub": string(pub)}
		if m.keys != nil {
			extra, err := keyPairValues(m.keys)
			if err != nil {
				return nil, err
			}
			maps.Copy(primary.StringData, extra)
		}
	case plan.KindKubeconfig:
		caCerts, err := ap.targetCerts(d)
		if err != nil {
			return nil, err
		}
		kc, err := buildKubeconfig(d.Kubeconfig, m, caCerts)
		if err != nil {
			return nil, err
		}
		primary.Type = "Opaque"
		primary.Metadata.Name, primary.Metadata.Namespace = d.Secret.Name, d.Secret.Namespace
		primary.StringData = map[string]string{
			"kubeconfig": string(kc),
			"tls.crt":    string(sign.EncodeCertsPEM(m.Cert)),
			"ca.crt":     string(sign.EncodeCertsPEM(caCerts...)),
		}
	case plan.KindMergedKubeconfig:
		kc, members, err := ap.mergedKubeconfig(d)
		if err != nil {
			return nil, err
		}
		primary.Type = "Opaque"
		primary.Metadata.Name, primary.Metadata.Namespace = d.Secret.Name, d.Secret.Namespace
		primary.Metadata.Annotations[plan.AnnotationMembers] = plan.MergedAnnotation(members)
		primary.StringData = map[string]string{"kubeconfig": string(kc)}
	default:
		return nil, fmt.Errorf("unknown object kind %q", d.Kind)
	}
	rec, err := ap.seal(d.Path, primary, d.Recipients, a.Stored, ap.openedRecord(a))
	if err != nil {
		return nil, fmt.Errorf("sealing %s: %w", d.Path, err)
	}
	files[d.Path] = rec
	maps.Copy(files, ap.requestFile(a, m))
	// A request is no CA a cluster can use: its copy follows the certificate.
	if d.Copy != nil && a.Action != plan.ActionRequest {
		cp := *primary
		cp.Metadata.Name, cp.Metadata.Namespace = d.Copy.Name, d.Copy.Namespace
		cp.Metadata.Annotations = objectAnnotations(d, m, state.RoleCopy)
		rcp := ap.Plan.Recipients.ForCluster(d.Copy.Cluster)
		rec, err := ap.seal(d.Copy.Path, &cp, rcp, ap.State.Copies[d.Copy.Path], nil)
		if err != nil {
			return nil, fmt.Errorf("sealing %s: %w", d.Copy.Path, err)
		}
		files[d.Copy.Path] = rec
	}
	return files, nil
}

// intermediates is the chain without its root: what a server sends after its own certificate.
func intermediates(m *Material) []*x509.Certificate {
	if len(m.Chain) <= 1 {
		return nil
	}
	return m.Chain[:len(m.Chain)-1]
}

// seal encrypts a manifest into the record stored at path. When the object
// was sealed before (prev) and can be opened, unchanged values keep their
// ciphertext so the git diff shows only what changed; opened is prev already
// decrypted, when the run took its key from it.
func (ap *Applier) seal(path string, s *secretManifest, recipients []string, prev *state.Object, opened *secrets.Opened) (*state.Object, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("no age recipients: set Config spec.reconciler.age, or SOPS_AGE_RECIPIENTS")
	}
	doc := s.doc()
	var raw []byte
	switch {
	case prev == nil || len(prev.Problems) > 0:
	case opened != nil:
		raw, _ = opened.ResealDoc(doc, recipients, ap.Plan.Now)
	case ap.Identities != nil:
		raw, _ = secrets.ResealDoc(doc, prev.Raw, recipients, *ap.Identities, ap.Plan.Now)
	}
	// A previous file that cannot be opened is replaced wholesale.
	if raw == nil {
		var err error
		if raw, err = secrets.SealDoc(doc, recipients, ap.Plan.Now); err != nil {
			return nil, err
		}
	}
	return state.NewRecord(path, raw, doc, recipients)
}
