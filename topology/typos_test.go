package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadDeclaresNoObject(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty directory", nil, "found no *.yaml or *.yml file"},
		{"only other files", map[string]string{"README.md": "# PKI", "ca.pem": "x", "sub/notes.txt": "kind: Certificate"}, "found no *.yaml or *.yml file"},
		{"only hidden and encrypted YAML", map[string]string{".ci.yaml": "kind: Certificate", "k.sops.yaml": "sops: {}\n"}, "found no *.yaml or *.yml file"},
		{"only comments and empty documents", map[string]string{"a.yaml": "# nothing yet\n", "b/c.yml": "---\n---\n~\n", "d.yaml": ""},
			"found 3 *.yaml or *.yml files, all empty or comments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			if c.files == nil {
				dir = t.TempDir()
			}
			_, err := Load(dir)
			require.Error(t, err)
			var list ErrorList
			require.ErrorAs(t, err, &list)
			assert.Equal(t, dir+": declares no object: a wrong path must not look like an empty PKI ("+c.want+"; a topology declares at least a Config)", err.Error())
		})
	}

	// A Config alone is a deliberate, empty PKI (everything is to be deleted).
	top, err := Load(writeTree(t, map[string]string{"config.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: Config\n"}))
	require.NoError(t, err)
	assert.Empty(t, top.CAs)

	// Other errors are reported as they are; the directory is not empty then.
	_, err = Load(writeTree(t, map[string]string{"a.yaml": "a: [b\n"}))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "declares no object")
}

const clusterConfig = `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
spec:
  clusters:
    - name: prod
    - name: staging
`

func TestUndeclaredClusters(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string // default clusterConfig
		bad    string
		want   []string // every one in the error; none means it loads
	}{
		{name: "certificate secret", bad: doc(docCert, "web"),
			want: []string{`bad.yaml:9:14: spec.secret.cluster: cluster "c" is not declared in the Config, did you mean "prod"? (a cluster of spec.clusters at config.yaml:6:3: prod, staging)`}},
		{name: "closest by edit distance", bad: strings.Replace(doc(docCert, "web"), "cluster: c", "cluster: prdo", 1),
			want: []string{`cluster "prdo" is not declared in the Config, did you mean "prod"?`}},
		{name: "closest is another cluster", bad: strings.Replace(doc(docCert, "web"), "cluster: c", "cluster: stagign", 1),
			want: []string{`did you mean "staging"?`}},
		{name: "declared", bad: strings.Replace(doc(docCert, "web"), "cluster: c", "cluster: staging", 1)},
		{name: "no clusters declared: any name", config: "apiVersion: gitca.dev/v1alpha1\nkind: Config\n", bad: doc(docCert, "web")},
		{name: "no Config at all: any name", config: "-", bad: doc(docCert, "web")},
		{name: "CA, key pair, bundle and kubeconfig", bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata: {name: sub}
spec: {issuer: ca, secret: {cluster: prod1}}
---
apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata: {name: sa}
spec: {secret: {cluster: stage}}
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata: {name: tb}
spec: {sources: [{ca: ca}], configMap: {cluster: prod}, secret: {cluster: Prod}}
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata: {name: k}
spec:
  issuer: ca
  username: u
  target: {server: "https://api", ca: ca}
  secret: {cluster: pord}
  authorization: {clusterRoleBindings: {cluster: prod-eu, clusterRoles: [view]}}
`, want: []string{
			`bad.yaml:4:38: spec.secret.cluster: cluster "prod1" is not declared`,
			`bad.yaml:9:26: spec.secret.cluster: cluster "stage" is not declared in the Config, did you mean "staging"?`,
			`bad.yaml:14:75: spec.secret.cluster: invalid cluster name "Prod"`,
			`bad.yaml:23:21: spec.secret.cluster: cluster "pord" is not declared`,
			`bad.yaml:24:50: spec.authorization.clusterRoleBindings.cluster: cluster "prod-eu" is not declared in the Config, did you mean "prod"?`,
		}},
		{name: "kcp workspace paths are not clusters", bad: `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata: {name: k}
spec:
  issuer: ca
  username: u
  target: {server: "https://api", ca: ca}
  secret: {cluster: prod}
  authorization: {clusterRoleBindings: {cluster: "root:org:team", clusterRoles: [view]}}
`},
		{name: "kubeadm preset's clusterName", bad: kubeadmDoc("edge", "    clusterName: egde\n"),
			want: []string{`bad.yaml:8:18: spec.kubeadm.clusterName: cluster "egde" is not declared in the Config, did you mean "prod"?`}},
		{name: "kubeadm preset's cluster defaults to its name", bad: kubeadmDoc("edge", ""),
			want: []string{`bad.yaml:4:9: metadata.name: the Preset's cluster defaults to its name, and cluster "edge" is not declared in the Config`, "or set the Preset's cluster"}},
		{name: "kubeadm preset on a declared cluster", bad: kubeadmDoc("edge", "    clusterName: prod\n")},
		{name: "kcp preset's cluster and a component's", bad: kcpDoc("    cluster: prod\n    rootShards:\n      - {name: root, hostname: r.example.com}\n      - {name: other, hostname: o.example.com, cluster: stagin}\n"),
			want: []string{`bad.yaml:11:57: spec.kcp.rootShards[1].cluster: cluster "stagin" is not declared in the Config, did you mean "staging"?`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"a-base.yaml": doc(docCA, "ca"), "bad.yaml": c.bad, "config.yaml": clusterConfig}
			switch c.config {
			case "":
			case "-":
				delete(files, "config.yaml")
			default:
				files["config.yaml"] = c.config
			}
			_, err := Load(writeTree(t, files))
			if len(c.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			if strings.Contains(c.name, "preset") {
				assert.Len(t, strings.Split(err.Error(), "\n"), 1, "one error per Preset and cluster, not one per generated object:\n%s", err)
			}
		})
	}
}

func kubeadmDoc(name, extra string) string {
	return "apiVersion: gitca.dev/v1alpha1\nkind: Preset\nmetadata:\n  name: " + name + "\nspec:\n  type: kubeadm\n  kubeadm:\n" + extra +
		"    controlPlaneEndpoint: 10.0.0.1:6443\n    nodes: [{name: cp-0, advertiseAddress: 10.0.0.1}]\n"
}

// The examples declare their presets' clusters, so they keep loading.
func TestExamplesDeclareTheirClusters(t *testing.T) {
	for _, dir := range []string{"../examples/kubeadm", "../examples/kcp"} {
		_, err := Load(dir)
		require.NoError(t, err, dir)
	}
	// And they would fail if they did not: the check applies to them.
	dir := t.TempDir()
	for _, f := range []string{"config.yaml", "kubeadm.yaml"} {
		b, err := os.ReadFile(filepath.Join("../examples/kubeadm", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte(strings.Replace(string(b), "- name: demo", "- name: prod", 1)), 0o644))
	}
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `kubeadm.yaml:15:18: spec.kubeadm.clusterName: cluster "demo" is not declared in the Config, did you mean "prod"?`)
}
