// Package export writes what a tool expects on disk (kubeadm's /etc/kubernetes)
// from the sealed state, decrypting the keys it needs.
package export

import (
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"go.yaml.in/yaml/v3"
)

// Annotations the kubeadm preset puts on its objects, mirrored from topology
// so this package need not import it.
const (
	annKubeadmFile = "gitca.dev/kubeadm-file"
	annNode        = "gitca.dev/node"
	annCluster     = "gitca.dev/cluster"
)

// KubeadmClusters lists the kubeadm clusters a state holds, sorted.
func KubeadmClusters(st *state.State) []string {
	set := map[string]bool{}
	for _, o := range st.Primary {
		if o.Annotations[annKubeadmFile] != "" && o.Annotations[annCluster] != "" {
			set[o.Annotations[annCluster]] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// KubeadmNodes lists the nodes of a kubeadm cluster, sorted by name.
func KubeadmNodes(st *state.State, cluster string) []string {
	set := map[string]bool{}
	for _, o := range st.Primary {
		if o.Annotations[annCluster] == cluster && o.Annotations[annNode] != "" {
			set[o.Annotations[annNode]] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Kubeadm decrypts one node's view of a kubeadm cluster into kubeadm's
// on-disk layout under out, which stands for /etc/kubernetes: pki/ca.crt,
// pki/ca.key, …, admin.conf, kubelet.conf, kube-proxy.conf. Each object's
// gitca.dev/kubeadm-file annotation is its path below out: a kubeconfig is
// written there as is, a certificate as <path>.crt (the leaf alone) and
// <path>.key, a key pair as <path>.key and <path>.pub. The kubelet's serving
// certificate is kubelet/pki/kubelet.crt and .key, the names the kubelet reads
// from its --cert-dir (/var/lib/kubelet/pki) when no tlsCertFile is set.
//
// This is the one place gitca writes private keys unencrypted, on purpose:
// keys and kubeconfigs get mode 0600. Nothing is written unless every file
// can be. It returns the files written, sorted.
func Kubeadm(st *state.State, ids secrets.Identities, cluster, node, out string) ([]string, error) {
	clusters := KubeadmClusters(st)
	if cluster == "" {
		if len(clusters) != 1 {
			return nil, fmt.Errorf("the state holds %d kubeadm clusters (%s): choose one with --cluster", len(clusters), strings.Join(clusters, ", "))
		}
		cluster = clusters[0]
	}
	nodes := KubeadmNodes(st, cluster)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no kubeadm cluster %q in the state (have: %s)", cluster, strings.Join(clusters, ", "))
	}
	if node == "" {
		node = nodes[0]
	} else if !slices.Contains(nodes, node) {
		return nil, fmt.Errorf("cluster %s has no node %q (nodes: %s)", cluster, node, strings.Join(nodes, ", "))
	}
	files := map[string]fileOut{}
	for _, id := range slices.Sorted(maps.Keys(st.Primary)) {
		o := st.Primary[id]
		file := o.Annotations[annKubeadmFile]
		if file == "" || o.Annotations[annCluster] != cluster {
			continue
		}
		if n := o.Annotations[annNode]; n != "" && n != node {
			continue
		}
		// The annotation can be written by hand on any object, and export
		// often runs as root into /etc: it must not reach outside out.
		if !filepath.IsLocal(filepath.FromSlash(file)) || path.Clean(file) != file {
			return nil, fmt.Errorf("%s: %s %q is not a relative path inside the export directory", o.Path, annKubeadmFile, file)
		}
		plain, err := secrets.Open(o.Raw, ids)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", o.Path, err)
		}
		var doc struct {
			StringData map[string]string `yaml:"stringData"`
		}
		if err := yaml.Unmarshal(plain, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Path, err)
		}
		sd := doc.StringData
		put := func(name string, f fileOut) error {
			// Two objects for one file would leave whichever came last, silently.
			if prev, dup := files[name]; dup {
				return fmt.Errorf("%s and %s are both exported as %s", prev.from, o.Path, name)
			}
			f.from = o.Path
			files[name] = f
			return nil
		}
		switch {
		case sd["kubeconfig"] != "":
			err = put(file, fileOut{content: sd["kubeconfig"], mode: 0o600})
		case sd["tls.pub"] != "":
			err = errors.Join(put(file+".key", fileOut{content: sd["tls.key"], mode: 0o600}),
				put(file+".pub", fileOut{content: verifyKeys(sd), mode: 0o644}))
			if sd[keyJWKS] != "" {
				err = errors.Join(err, put(file+".jwks.json", fileOut{content: sd[keyJWKS], mode: 0o644}))
			}
		case sd["tls.crt"] != "":
			// kubeadm keeps each certificate alone in its .crt; a chain would go in ca.crt.
			// A root CA's .crt is what its verifiers trust: during a rotation
			// both generations, the signing one first (the pair with .key).
			crt := firstCertPEM(sd["tls.crt"])
			rootCA, trust := caTrust(o, sd)
			if rootCA {
				crt = trust
			}
			err = errors.Join(put(file+".crt", fileOut{content: crt, mode: 0o644}),
				put(file+".key", fileOut{content: sd["tls.key"], mode: 0o600}))
			if rootCA && signsInCluster(st, o) {
				// kube-controller-manager's --cluster-signing-cert-file takes exactly one certificate.
				err = errors.Join(err, put(file+"-signing.crt", fileOut{content: firstCertPEM(sd["tls.crt"]), mode: 0o644}))
			}
			if crl := sd[keyCRL]; crl != "" {
				// etcd's --client-crl-file and --peer-crl-file: pki/etcd/ca.crl.
				err = errors.Join(err, put(file+".crl", fileOut{content: crl, mode: 0o644}))
			}
		default:
			err = fmt.Errorf("%s: nothing to export", o.Path)
		}
		if err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		p := filepath.Join(out, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(p, []byte(f.content), f.mode); err != nil {
			return nil, err
		}
	}
	return names, nil
}

type fileOut struct {
	content string
	mode    os.FileMode
	from    string // the state record it comes from, for errors
}

// writeFileAtomic creates the file with its final mode before any byte is
// written, so a key is never readable by others, even briefly.
func writeFileAtomic(p string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".gitca-export-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// firstCertPEM is the first certificate of a PEM bundle, re-encoded alone.
func firstCertPEM(bundle string) string {
	b, _ := pem.Decode([]byte(bundle))
	if b == nil {
		return bundle
	}
	return string(pem.EncodeToMemory(b))
}
