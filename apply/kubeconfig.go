package apply

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// buildKubeconfig writes a kubeconfig with the client certificate and key
// embedded, one cluster entry per distinct server path and one context each.
func buildKubeconfig(k *topology.Kubeconfig, m *Material, caCerts []*x509.Certificate) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	if err := addKubeconfig(cfg, k, m, caCerts); err != nil {
		return nil, err
	}
	// clientcmd.Write sorts the maps, so the same kubeconfig always has the
	// same bytes.
	return clientcmd.Write(*cfg)
}

// addKubeconfig adds k's user, clusters and contexts to cfg; the first
// context becomes the current one if cfg has none yet.
func addKubeconfig(cfg *clientcmdapi.Config, k *topology.Kubeconfig, m *Material, caCerts []*x509.Certificate) error {
	keyPEM, err := sign.EncodePrivateKeyPEM(m.Key)
	if err != nil {
		return err
	}
	t := k.Spec.Target
	user := k.Spec.Username
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: sign.EncodeCertsPEM(m.Cert),
		ClientKeyData:         keyPEM,
	}
	contexts := k.Spec.Contexts
	if len(contexts) == 0 && k.Spec.MergeInto == "" {
		contexts = []topology.ContextSpec{{Name: k.Metadata.Name}}
	}
	for _, c := range contexts {
		clusterName := t.Name
		if clusterName == "" {
			clusterName = k.Metadata.Name
		}
		if c.Path != "" {
			clusterName += ":" + strings.Trim(c.Path, "/")
		}
		cfg.Clusters[clusterName] = &clientcmdapi.Cluster{
			Server:                   strings.TrimRight(t.Server, "/") + c.Path,
			CertificateAuthorityData: sign.EncodeCertsPEM(caCerts...),
			TLSServerName:            t.TLSServerName,
		}
		cfg.Contexts[c.Name] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user, Namespace: c.Namespace}
	}
	if cfg.CurrentContext == "" && len(contexts) > 0 {
		cfg.CurrentContext = contexts[0].Name
	}
	return nil
}

// mergedKubeconfig is one kubeconfig of every member of d, members in name
// order (the first one's first context is the current one), each with its
// key and certificate as they are after the run: signed now, or opened from
// its record. It returns the member records' annotations, which the merged
// record keeps a digest of.
func (ap *Applier) mergedKubeconfig(d *plan.Desired) ([]byte, map[string]map[string]string, error) {
	cfg := clientcmdapi.NewConfig()
	anns := map[string]map[string]string{}
	for _, md := range d.Members {
		a := ap.Plan.Action(md.ID)
		m := ap.material(md.ID)
		if a == nil || m == nil {
			return nil, nil, fmt.Errorf("member %s was not applied", md.ID)
		}
		cert, key := m.Cert, m.Key
		if key == nil {
			// A kept member: its key and certificate are in its record.
			var err error
			if key, err = ap.storedKey(a); err != nil {
				return nil, nil, fmt.Errorf("member %s: %w", md.ID, err)
			}
			cert = a.Stored.Cert()
		}
		caCerts, err := ap.targetCerts(md)
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", md.ID, err)
		}
		if err := addKubeconfig(cfg, md.Kubeconfig, &Material{Key: key, Cert: cert}, caCerts); err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", md.ID, err)
		}
		if rec := ap.record(md.Path); rec != nil {
			anns[md.ID] = rec.Annotations
		} else if a.Stored != nil {
			anns[md.ID] = a.Stored.Annotations
		}
	}
	kc, err := clientcmd.Write(*cfg)
	return kc, anns, err
}

// KeyFromKubeconfig returns the client key embedded in a kubeconfig.
func KeyFromKubeconfig(raw []byte) (crypto.Signer, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.AuthInfos)) {
		if ai := cfg.AuthInfos[name]; len(ai.ClientKeyData) > 0 {
			return sign.ParsePrivateKeyPEM(ai.ClientKeyData)
		}
	}
	return nil, fmt.Errorf("kubeconfig has no embedded client key")
}

// targetCerts are the CA certificates a kubeconfig trusts for its server:
// a CA's own certificate, or a TrustBundle's members.
func (ap *Applier) targetCerts(d *plan.Desired) ([]*x509.Certificate, error) {
	name := d.Kubeconfig.Spec.Target.CA
	if ap.material(string(plan.KindCA)+"/"+name) != nil {
		certs, _ := ap.trust(name)
		return certs, nil
	}
	if ap.Plan.Topology.TrustBundle(name) != nil {
		certs, _, err := ap.Plan.BundleCerts(name, ap.trust)
		return certs, err
	}
	return nil, fmt.Errorf("spec.target.ca: %s is neither a CertificateAuthority nor a TrustBundle", name)
}
