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
	keyPEM, err := sign.EncodePrivateKeyPEM(m.Key)
	if err != nil {
		return nil, err
	}
	t := k.Spec.Target
	cfg := clientcmdapi.NewConfig()
	user := k.Spec.Username
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: sign.EncodeCertsPEM(m.Cert),
		ClientKeyData:         keyPEM,
	}
	contexts := k.Spec.Contexts
	if len(contexts) == 0 {
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
	// The first context is the default; clientcmd.Write sorts the maps, so
	// the same kubeconfig always has the same bytes.
	cfg.CurrentContext = contexts[0].Name
	return clientcmd.Write(*cfg)
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
		certs, _, err := plan.BundleCerts(ap.Plan.Topology, name, ap.Plan.Now, ap.trust)
		return certs, err
	}
	return nil, fmt.Errorf("spec.target.ca: %s is neither a CertificateAuthority nor a TrustBundle", name)
}
