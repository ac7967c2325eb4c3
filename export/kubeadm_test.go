package export

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exportRecord is one sealed record of a test state, annotated the way the
// kubeadm preset annotates its objects.
type exportRecord struct {
	id      string // <Kind>/<name>
	cluster string
	file    string // gitca.dev/kubeadm-file; empty for an object export ignores
	node    string
	data    map[string]string
}

// exportState seals the records into a state tree and reads it back.
func exportState(t *testing.T, k testpki.AgeKey, recs []exportRecord) *state.State {
	t.Helper()
	dir := t.TempDir()
	for _, r := range recs {
		name := r.id[strings.Index(r.id, "/")+1:]
		ann := map[string]string{state.AnnotationObject: r.id, state.AnnotationRole: state.RolePrimary, annCluster: r.cluster}
		if r.file != "" {
			ann[annKubeadmFile] = r.file
		}
		if r.node != "" {
			ann[annNode] = r.node
		}
		doc := secrets.Doc{"apiVersion": "v1", "kind": "Secret",
			"metadata": secrets.Doc{"name": name, "namespace": "kube-system", "annotations": ann}, "stringData": r.data}
		sealed, err := secrets.SealDoc(doc, []string{k.Recipient}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		p := filepath.Join(dir, "clusters", r.cluster, "kube-system", "secret-"+name+".yaml")
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, sealed, 0o644))
	}
	st, err := plan.ReadState(dir)
	require.NoError(t, err)
	return st
}

// exported lists every file under dir with its mode and content.
func exported(t *testing.T, dir string) map[string]fileOut {
	t.Helper()
	got := map[string]fileOut{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = fileOut{content: string(b), mode: info.Mode().Perm()}
		return nil
	}))
	return got
}

func TestExportKubeadmLayout(t *testing.T) {
	k := testpki.NewAgeKey(t)
	caCrt, caKey := testpki.PEMPair(t, "kubernetes")
	apiCrt, apiKey := testpki.PEMPair(t, "kube-apiserver")
	k0Crt, k0Key := testpki.PEMPair(t, "system:node:cp-0")
	k1Crt, k1Key := testpki.PEMPair(t, "system:node:cp-1")
	_, saKey := testpki.PEMPair(t, "sa")
	const saPub = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"
	tls := func(crt, key string) map[string]string {
		return map[string]string{"tls.crt": crt, "tls.key": key, "ca.crt": caCrt}
	}
	st := exportState(t, k, []exportRecord{
		{id: "CertificateAuthority/demo-ca", cluster: "demo", file: "pki/ca", data: map[string]string{"tls.crt": caCrt, "tls.key": caKey}},
		// tls.crt carries the chain; kubeadm's apiserver.crt is the leaf alone.
		{id: "Certificate/demo-apiserver", cluster: "demo", file: "pki/apiserver", data: tls(apiCrt+caCrt, apiKey)},
		{id: "Certificate/demo-kubelet-serving-cp-0", cluster: "demo", file: "kubelet/pki/kubelet", node: "cp-0", data: tls(k0Crt, k0Key)},
		{id: "Certificate/demo-kubelet-serving-cp-1", cluster: "demo", file: "kubelet/pki/kubelet", node: "cp-1", data: tls(k1Crt, k1Key)},
		{id: "KeyPair/demo-sa", cluster: "demo", file: "pki/sa", data: map[string]string{"tls.key": saKey, "tls.pub": saPub}},
		{id: "Kubeconfig/demo-kube-proxy-conf", cluster: "demo", file: "kube-proxy.conf", data: map[string]string{"kubeconfig": "kube-proxy\n"}},
		{id: "Kubeconfig/demo-scheduler-conf-cp-0", cluster: "demo", file: "scheduler.conf", node: "cp-0", data: map[string]string{"kubeconfig": "scheduler at cp-0\n"}},
		{id: "Kubeconfig/demo-scheduler-conf-cp-1", cluster: "demo", file: "scheduler.conf", node: "cp-1", data: map[string]string{"kubeconfig": "scheduler at cp-1\n"}},
		// Neither another cluster's objects nor objects without a kubeadm file belong to the node.
		{id: "Kubeconfig/other-admin-conf", cluster: "other", file: "admin.conf", data: map[string]string{"kubeconfig": "other\n"}},
		{id: "Certificate/demo-web", cluster: "demo", data: tls(apiCrt, apiKey)},
	})
	assert.Equal(t, []string{"demo", "other"}, KubeadmClusters(st))
	assert.Equal(t, []string{"cp-0", "cp-1"}, KubeadmNodes(st, "demo"))

	out := filepath.Join(t.TempDir(), "etc-kubernetes")
	names, err := Kubeadm(st, k.IDs, "demo", "cp-1", out)
	require.NoError(t, err)
	want := map[string]fileOut{
		"kube-proxy.conf":         {content: "kube-proxy\n", mode: 0o600},
		"kubelet/pki/kubelet.crt": {content: k1Crt, mode: 0o644},
		"kubelet/pki/kubelet.key": {content: k1Key, mode: 0o600},
		"pki/apiserver.crt":       {content: apiCrt, mode: 0o644},
		"pki/apiserver.key":       {content: apiKey, mode: 0o600},
		"pki/ca.crt":              {content: caCrt, mode: 0o644},
		"pki/ca.key":              {content: caKey, mode: 0o600},
		"pki/sa.key":              {content: saKey, mode: 0o600},
		"pki/sa.pub":              {content: saPub, mode: 0o644},
		"scheduler.conf":          {content: "scheduler at cp-1\n", mode: 0o600},
	}
	assert.Equal(t, want, exported(t, out), "exactly these files, nothing left behind")
	assert.Equal(t, []string{"kube-proxy.conf", "kubelet/pki/kubelet.crt", "kubelet/pki/kubelet.key", "pki/apiserver.crt", "pki/apiserver.key",
		"pki/ca.crt", "pki/ca.key", "pki/sa.key", "pki/sa.pub", "scheduler.conf"}, names)

	// Without --node the first node is exported; without --cluster, only a single cluster may be implied.
	out0 := t.TempDir()
	_, err = Kubeadm(st, k.IDs, "demo", "", out0)
	require.NoError(t, err)
	assert.Equal(t, "scheduler at cp-0\n", exported(t, out0)["scheduler.conf"].content)
	_, err = Kubeadm(st, k.IDs, "", "cp-0", t.TempDir())
	assert.ErrorContains(t, err, "the state holds 2 kubeadm clusters (demo, other): choose one with --cluster")
	_, err = Kubeadm(st, k.IDs, "demo", "cp-9", t.TempDir())
	assert.ErrorContains(t, err, `cluster demo has no node "cp-9" (nodes: cp-0, cp-1)`)
}

// TestExportKubeadmRefuses: annotations can be written by hand, so export
// checks what they ask for before it writes anything.
func TestExportKubeadmRefuses(t *testing.T) {
	k := testpki.NewAgeKey(t)
	crt, key := testpki.PEMPair(t, "x")
	conf := func(s string) map[string]string { return map[string]string{"kubeconfig": s} }
	_, saKey := testpki.PEMPair(t, "sa")
	base := []exportRecord{
		{id: "Kubeconfig/demo-admin-conf", cluster: "demo", file: "admin.conf", data: conf("admin\n")},
		{id: "Kubeconfig/demo-kubelet-conf-cp-0", cluster: "demo", file: "kubelet.conf", node: "cp-0", data: conf("kubelet\n")},
		{id: "KeyPair/demo-sa", cluster: "demo", file: "pki/sa", data: map[string]string{"tls.key": saKey, "tls.pub": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}},
	}
	for _, tc := range []struct {
		name string
		rec  exportRecord
		want string
	}{
		{"a parent directory", exportRecord{id: "Kubeconfig/evil", cluster: "demo", file: "../../root/.ssh/authorized_keys", data: conf("ssh-ed25519 AAAA\n")},
			`gitca.dev/kubeadm-file "../../root/.ssh/authorized_keys" is not a relative path inside the export directory`},
		{"an absolute path", exportRecord{id: "Kubeconfig/evil", cluster: "demo", file: "/etc/passwd", data: conf("x\n")},
			`"/etc/passwd" is not a relative path`},
		{"a path that only leaves and comes back", exportRecord{id: "Kubeconfig/evil", cluster: "demo", file: "pki/../admin.conf", data: conf("x\n")},
			`"pki/../admin.conf" is not a relative path`},
		{"a second object for the same file", exportRecord{id: "Kubeconfig/demo-admin-conf-by-hand", cluster: "demo", file: "admin.conf", data: conf("x\n")},
			"clusters/demo/kube-system/secret-demo-admin-conf.yaml and clusters/demo/kube-system/secret-demo-admin-conf-by-hand.yaml are both exported as admin.conf"},
		// A certificate and a key pair under one name would both write <name>.key.
		{"a certificate over a key pair's key", exportRecord{id: "Certificate/demo-sa-cert", cluster: "demo", file: "pki/sa", data: map[string]string{"tls.crt": crt, "tls.key": key}},
			"are both exported as pki/sa.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := exportState(t, k, append(slices.Clone(base), tc.rec))
			out := filepath.Join(t.TempDir(), "out")
			_, err := Kubeadm(st, k.IDs, "demo", "", out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NoDirExists(t, out, "nothing is written when any file is refused")
		})
	}
}
