package topology

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// a-base.yaml is valid on its own; each malformed case adds bad.yaml next to it,
// so the expected positions all count lines in bad.yaml alone.
const baseYAML = `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: ca
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: short
spec:
  issuer: ca
  validity: 100h
---
apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: a-cert
spec:
  issuer: ca
  profile: server
  secret:
    cluster: c
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: tb
spec:
  sources:
    - ca: ca
  configMap:
    cluster: c
`

const (
	secretAge = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQSHHH3J"
	badAge    = "age1thisisnotavalidrecipientatallbutlooksclosexxxxxxxxxxxxxxxxxx"
)

func TestLoadRejectsMalformed(t *testing.T) {
	tests := []struct {
		name  string
		bad   string
		extra map[string]string // more files, such as referenced certificates
		want  []string          // substrings of the error, each on its own line
		never []string          // must not appear anywhere in the error
	}{
		{
			name: "yaml syntax",
			bad:  "apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: [name\n",
			want: []string{"bad.yaml:3:11: invalid YAML: sequence end token ']' not found"},
		},
		{
			name: "unknown field suggests the right one",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  isuer: ca
`,
			want: []string{`bad.yaml:6:3: spec.isuer: unknown field "isuer", did you mean "issuer"? (allowed: dnsNames, ipAddresses, issuer, keyAlgorithm, profile, renewBefore, rotationPolicy, secret, subject, uris, validity)`},
		},
		{
			name: "unknown top-level field",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
  namespace: y
`,
			want: []string{`bad.yaml:5:3: metadata.namespace: unknown field "namespace" (allowed: annotations, labels, name)`},
		},
		{
			name: "sequence expected",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  dnsNames: a.example.com
`,
			want: []string{"bad.yaml:6:13: spec.dnsNames: expected a sequence, got a string"},
		},
		{
			name: "string expected, sequence given",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer:
    - ca
`,
			want: []string{"bad.yaml:7:5: spec.issuer: expected a string, got a sequence"},
		},
		{
			name: "number where a string is expected",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
spec:
  secret:
    cluster: 123
`,
			want: []string{`bad.yaml:7:14: spec.secret.cluster: expected a string, got a number (quote it: "123")`},
		},
		{
			name: "integer expected",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  pathLen: one
`,
			want: []string{"bad.yaml:6:12: spec.pathLen: expected an integer, got a string"},
		},
		{
			name: "boolean expected",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: x
spec:
  allowPrivilegedGroups: "yes"
`,
			want: []string{"bad.yaml:6:26: spec.allowPrivilegedGroups: expected true or false, got a string"},
		},
		{
			name: "invalid duration",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  validity: 1y
`,
			want: []string{`bad.yaml:6:13: spec.validity: invalid duration "1y" (Go duration such as 8760h or 90m, or whole days such as 365d)`},
		},
		{
			name: "wrong apiVersion",
			bad: `apiVersion: gitca.dev/v1
kind: KeyPair
metadata:
  name: x
`,
			want: []string{`bad.yaml:1:13: apiVersion: unsupported apiVersion "gitca.dev/v1" (allowed: gitca.dev/v1alpha1)`},
		},
		{
			name: "missing apiVersion",
			bad: `kind: KeyPair
metadata:
  name: x
`,
			want: []string{"bad.yaml:1:1: apiVersion: apiVersion is required (allowed: gitca.dev/v1alpha1)"},
		},
		{
			name: "unknown kind",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificat
metadata:
  name: x
`,
			want: []string{`bad.yaml:2:7: kind: unknown kind "Certificat" (allowed: Certificate, CertificateAuthority, Config, KeyPair, Kubeconfig, Preset, TrustBundle)`},
		},
		{
			name: "document is not a mapping",
			bad:  "- apiVersion: gitca.dev/v1alpha1\n",
			want: []string{"bad.yaml:1:1: a document must be a mapping with apiVersion and kind, got a sequence"},
		},
		{
			name: "duplicate key",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
  name: y
`,
			want: []string{"bad.yaml:5:3: metadata.name: duplicate field, first set at line 4"},
		},
		{
			name: "name missing",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
spec:
  pathLen: 0
`,
			want: []string{"bad.yaml:2:1: metadata.name: name is required (a DNS-1123 subdomain"},
		},
		{
			name: "name not DNS-1123",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: Web_CA
`,
			want: []string{`bad.yaml:4:9: metadata.name: invalid name "Web_CA" (a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'`},
		},
		{
			name: "duplicate name within a kind",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: short
`,
			want: []string{`bad.yaml:4:9: metadata.name: duplicate CertificateAuthority "short", first declared at a-base.yaml:7:1`},
		},
		{
			name: "issuer does not exist",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: nope
  profile: server
  secret:
    cluster: c
`,
			want: []string{`bad.yaml:6:11: spec.issuer: issuer "nope" does not exist (existing CertificateAuthorities: ca, short)`},
		},
		{
			name: "issuer is a certificate",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  issuer: a-cert
`,
			want: []string{`bad.yaml:6:11: spec.issuer: issuer "a-cert" is a Certificate, not a CertificateAuthority`},
		},
		{
			name: "issuer cycle",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: b
spec:
  issuer: c
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: c
spec:
  issuer: d
---
apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: d
spec:
  issuer: b
`,
			want: []string{"bad.yaml:6:11: spec.issuer: issuer cycle: b → c → d → b"},
		},
		{
			name: "imported CA with issuer",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  issuer: ca
  import:
    certificate: x.crt
`,
			extra: map[string]string{"x.crt": "not checked here"},
			want:  []string{"bad.yaml:6:11: spec.issuer: an imported CA must be a root, so it cannot have an issuer"},
		},
		{
			name: "leaf outlives issuer",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: short
  profile: server
  validity: 200h
  secret:
    cluster: c
`,
			want: []string{`bad.yaml:8:13: spec.validity: validity 200h is longer than issuer "short"'s validity 100h (at most 100h: a certificate cannot outlive its issuer)`},
		},
		{
			name: "defaulted leaf outlives issuer",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: x
spec:
  issuer: short
  username: x
  target:
    server: https://a:6443
    ca: ca
  secret:
    cluster: c
`,
			want: []string{`bad.yaml:5:1: spec.validity: validity 8760h is longer than issuer "short"'s validity 100h`},
		},
		{
			name: "intermediate outlives root",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  issuer: ca
  validity: 87601h
`,
			want: []string{`bad.yaml:7:13: spec.validity: validity 87601h is longer than issuer "ca"'s validity 87600h`},
		},
		{
			name: "SANs",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: ca
  profile: server
  dnsNames: [ok.example.com, "*.ok.example.com", "a.*.example.com", -bad.example.com, Upper.example.com]
  ipAddresses:
    - 10.0.0.1
    - 10.0.0.256
    - "fe80::1%eth0"
  uris:
    - spiffe://example.com/sa
    - /relative/path
  secret:
    cluster: c
`,
			want: []string{
				`bad.yaml:8:50: spec.dnsNames[2]: invalid DNS name "a.*.example.com" (an RFC 1123 host name`,
				`bad.yaml:8:69: spec.dnsNames[3]: invalid DNS name "-bad.example.com"`,
				`bad.yaml:8:87: spec.dnsNames[4]: invalid DNS name "Upper.example.com"`,
				`bad.yaml:11:7: spec.ipAddresses[1]: invalid IP address "10.0.0.256"`,
				`bad.yaml:12:7: spec.ipAddresses[2]: invalid IP address "fe80::1%eth0"`,
				`bad.yaml:15:7: spec.uris[1]: invalid URI "/relative/path" (an absolute URI with a scheme`,
			},
			never: []string{"dnsNames[0]", "dnsNames[1]", "ipAddresses[0]", "uris[0]"},
		},
		{
			name: "unknown key algorithm, profile and rotation policy",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: ca
  profile: web
  keyAlgorithm: RSA-1024
  rotationPolicy: Sometimes
  secret:
    cluster: c
`,
			want: []string{
				`bad.yaml:7:12: spec.profile: unknown profile "web" (one of server, client, peer)`,
				`bad.yaml:8:17: spec.keyAlgorithm: unknown keyAlgorithm "RSA-1024" (one of ECDSA-P256, ECDSA-P384, Ed25519, RSA-2048, RSA-3072, RSA-4096)`,
				`bad.yaml:9:19: spec.rotationPolicy: unknown rotationPolicy "Sometimes" (one of Always, Never)`,
			},
		},
		{
			name: "profile required",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: ca
  secret:
    cluster: c
`,
			want: []string{"bad.yaml:5:1: spec.profile: profile is required (one of server, client, peer)"},
		},
		{
			name: "renewBefore not shorter than validity",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: ca
  profile: server
  validity: 30d
  renewBefore: 720h
  secret:
    cluster: c
`,
			want: []string{"bad.yaml:9:16: spec.renewBefore: renewBefore 720h must be shorter than validity 720h"},
		},
		{
			name: "negative and zero durations",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  validity: -10d
  renewBefore: 0s
`,
			want: []string{
				"bad.yaml:6:13: spec.validity: validity must be positive, got -240h",
				"bad.yaml:7:16: spec.renewBefore: renewBefore must be positive, got 0s",
			},
			never: []string{"must be shorter"},
		},
		{
			name: "missing secret cluster",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
spec:
  keyAlgorithm: Ed25519
`,
			want: []string{"bad.yaml:5:1: spec.secret.cluster: cluster is required: the overlay that receives it"},
		},
		{
			name: "invalid secret name and namespace",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
spec:
  secret:
    cluster: c
    namespace: kube.system
    name: My_Secret
`,
			want: []string{
				`bad.yaml:8:16: spec.secret.namespace: invalid namespace "kube.system" (a DNS-1123 label`,
				`bad.yaml:9:11: spec.secret.name: invalid name "My_Secret"`,
			},
		},
		{
			name: "two objects in one Secret",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: x
spec:
  secret:
    cluster: c
    name: a-cert
`,
			want: []string{`bad.yaml:6:3: spec.secret: Secret default/a-cert in cluster "c" is also written by Certificate "a-cert" (a-base.yaml:15:1)`},
		},
		{
			name: "a ConfigMap and a Secret of the same name do not conflict",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: tb
spec:
  secret:
    cluster: c
  keyAlgorithm: nope
`,
			want:  []string{`bad.yaml:8:17: spec.keyAlgorithm: unknown keyAlgorithm "nope"`},
			never: []string{"also written"},
		},
		{
			name: "kubeconfig problems",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: x
spec:
  issuer: tb
  groups: [ops, "system:masters"]
  target:
    server: http://api.example.com
    ca: nothing
  secret:
    cluster: c
  authorization:
    clusterRoleBindings:
      name: one
`,
			want: []string{
				`bad.yaml:5:1: spec.username: username is required`,
				`bad.yaml:6:11: spec.issuer: issuer "tb" is a TrustBundle, not a CertificateAuthority`,
				`bad.yaml:7:17: spec.groups[1]: group "system:masters" grants unchecked cluster-admin that no RBAC rule can limit, and kcp front-proxies drop it (set allowPrivilegedGroups: true`,
				`bad.yaml:9:13: spec.target.server: invalid server "http://api.example.com" (an https URL`,
				`bad.yaml:10:9: spec.target.ca: "nothing" is neither a CertificateAuthority nor a TrustBundle`,
				`bad.yaml:14:5: spec.authorization.clusterRoleBindings.cluster: cluster is required`,
				`bad.yaml:14:5: spec.authorization.clusterRoleBindings.clusterRoles: at least one ClusterRole is required`,
			},
		},
		{
			name: "privileged group allowed, binding name with many roles",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: x
spec:
  issuer: ca
  username: admin
  groups: ["system:masters"]
  allowPrivilegedGroups: true
  target:
    server: https://api.example.com
    ca: tb
  contexts:
    - name: a
    - name: a
      path: clusters/root
  secret:
    cluster: c
  authorization:
    clusterRoleBindings:
      cluster: c
      clusterRoles: [view, edit]
      name: both
`,
			want: []string{
				`bad.yaml:15:13: spec.contexts[1].name: duplicate context "a", first at spec.contexts[0]`,
				`bad.yaml:16:13: spec.contexts[1].path: path "clusters/root" must start with /`,
				`bad.yaml:23:13: spec.authorization.clusterRoleBindings.name: name can only be set when exactly one ClusterRole is bound`,
			},
			never: []string{"system:masters"},
		},
		{
			name: "trust bundle sources",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: x
spec:
  sources:
    - ca: ca
      bundle: tb
    - {}
    - ca: missing
    - bundle: missing
    - file: missing.pem
    - file: ../outside.pem
    - file: /etc/hosts
`,
			want: []string{
				"bad.yaml:5:1: spec: a TrustBundle must be delivered somewhere (set configMap, secret or both)",
				"bad.yaml:7:7: spec.sources[0]: a source must set exactly one of ca, bundle, file, this one sets 2",
				"bad.yaml:9:7: spec.sources[1]: a source must set exactly one of ca, bundle, file, this one sets 0",
				`bad.yaml:10:11: spec.sources[2].ca: CertificateAuthority "missing" does not exist (existing CertificateAuthorities: ca, short)`,
				`bad.yaml:11:15: spec.sources[3].bundle: TrustBundle "missing" does not exist (existing TrustBundles: tb, x)`,
				`bad.yaml:12:13: spec.sources[4].file: file "missing.pem" does not exist`,
				`bad.yaml:13:13: spec.sources[5].file: path "../outside.pem" leaves the topology repo`,
				`bad.yaml:14:13: spec.sources[6].file: path "/etc/hosts" leaves the topology repo`,
			},
		},
		{
			name: "trust bundle inheritance cycle",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: y
spec:
  sources:
    - ca: ca
    - bundle: x
  secret:
    cluster: c
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: x
spec:
  sources:
    - bundle: y
  secret:
    cluster: c
    name: other
`,
			want: []string{"bad.yaml:18:15: spec.sources[0].bundle: bundle inheritance cycle: x → y → x"},
		},
		{
			name: "import file missing",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  import:
    certificate: certs/root.pem
    key: keys/root.sops.yaml
`,
			extra: map[string]string{"keys/root.sops.yaml": "sops: {}"},
			want:  []string{`bad.yaml:7:18: spec.import.certificate: file "certs/root.pem" does not exist (a relative path to an existing file inside the topology repo)`},
			never: []string{"spec.import.key"},
		},
		{
			name: "negative pathLen",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  pathLen: -1
`,
			want: []string{"bad.yaml:6:12: spec.pathLen: pathLen must not be negative, got -1"},
		},
		{
			name: "config clusters",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Config
spec:
  clusters:
    - name: prod
    - name: prod
      flavour: argo
    - name: Bad
      namespace: Kube
      path: ca/keys
`,
			want: []string{
				`bad.yaml:6:13: spec.clusters[1].name: duplicate cluster "prod", first at spec.clusters[0]`,
				`bad.yaml:7:16: spec.clusters[1].flavour: unknown flavour "argo" (one of flux, ksops)`,
				`bad.yaml:8:13: spec.clusters[2].name: invalid cluster name "Bad"`,
				`bad.yaml:9:18: spec.clusters[2].namespace: invalid namespace "Kube"`,
			},
		},
		{
			name: "config recipients are never echoed",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Config
spec:
  reconciler:
    age:
      - ` + secretAge + `
    breakGlass:
      - ` + badAge + `
`,
			want: []string{
				"bad.yaml:6:9: spec.reconciler.age[0]: this is an age secret key, not a recipient; remove it from the repository and rotate it (an age X25519 public key: age1...)",
				"bad.yaml:8:9: spec.reconciler.breakGlass[0]: not a valid age recipient (an age X25519 public key: age1...)",
			},
			never: []string{secretAge, badAge, "QQQQ"},
		},
		{
			name: "config defaults",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Config
spec:
  defaults:
    keyAlgorithm: DSA
    leaf:
      validity: 1h
      renewBefore: 2h
`,
			want: []string{
				`bad.yaml:5:19: spec.defaults.keyAlgorithm: unknown keyAlgorithm "DSA"`,
				"bad.yaml:8:20: spec.defaults.leaf.renewBefore: renewBefore 2h must be shorter than validity 1h",
			},
		},
		{
			name: "two configs",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Config
---
apiVersion: gitca.dev/v1alpha1
kind: Config
`,
			want: []string{"bad.yaml:5:1: kind: only one Config document is allowed, the first is at bad.yaml:2:1"},
		},
		{
			name: "common name over the X.509 limit, bad tlsServerName",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  subject:
    commonName: ` + strings.Repeat("c", 65) + `
---
apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: k
spec:
  issuer: ca
  username: k
  target:
    server: https://10.0.0.1:6443
    ca: ca
    tlsServerName: "api_server"
  secret:
    cluster: c
`,
			want: []string{
				"bad.yaml:7:17: spec.subject.commonName: commonName is 65 characters long (at most 64 characters",
				`bad.yaml:19:20: spec.target.tlsServerName: invalid tlsServerName "api_server"`,
			},
		},
		{
			name: "a name long enough to break the default common name",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: ` + strings.Repeat("n", 70) + `
spec:
  issuer: ca
  profile: server
  secret:
    cluster: c
`,
			want: []string{"bad.yaml:5:1: spec.subject.commonName: commonName is 70 characters long"},
		},
		{
			name: "unknown preset type",
			bad: `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: x
spec:
  type: openshift
`,
			want: []string{`bad.yaml:6:9: spec.type: unknown preset type "openshift" (one of `},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"a-base.yaml": baseYAML, "bad.yaml": tc.bad}
			for k, v := range tc.extra {
				files[k] = v
			}
			top, err := Load(writeTree(t, files))
			require.Error(t, err)
			assert.Nil(t, top)
			var list ErrorList
			require.ErrorAs(t, err, &list)
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				assert.True(t, found, "want a line starting with\n  %s\ngot\n  %s", w, strings.Join(lines, "\n  "))
			}
			for _, n := range tc.never {
				assert.NotContains(t, err.Error(), n)
			}
		})
	}
}

func TestBaseTopologyIsValid(t *testing.T) {
	_, err := Load(writeTree(t, map[string]string{"a-base.yaml": baseYAML}))
	require.NoError(t, err)
}

// One file with three problems gives three lines, in file order, and nothing else.
func TestLoadCollectsEveryError(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a-base.yaml": baseYAML,
		"bad.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: x
spec:
  issuer: ca
  profile: server
  ipAddresses: [1.2.3]
  secret:
    cluster: c
    namespace: Bad
---
apiVersion: gitca.dev/v1alpha1
kind: KeyPair
metadata:
  name: y
spec:
  keyAlgorithm: DSA
  secret:
    cluster: c
`,
	})
	_, err := Load(dir)
	require.Error(t, err)
	assert.Equal(t, []string{
		`bad.yaml:8:17: spec.ipAddresses[0]: invalid IP address "1.2.3" (an IPv4 or IPv6 address without zone, such as 10.0.0.1 or fd00::1)`,
		`bad.yaml:11:16: spec.secret.namespace: invalid namespace "Bad" (a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)`,
		`bad.yaml:18:17: spec.keyAlgorithm: unknown keyAlgorithm "DSA" (one of ECDSA-P256, ECDSA-P384, Ed25519, RSA-2048, RSA-3072, RSA-4096)`,
	}, strings.Split(err.Error(), "\n"))
}

// Structural errors in several files are all reported, sorted by file.
func TestLoadCollectsDecodeErrorsAcrossFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"b.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: KeyPair\nmetadata:\n  nam: x\n",
		"a.yaml": "apiVersion: gitca.dev/v1alpha1\nkind: Nope\n",
		"c.yaml": "key: [\n",
	})
	_, err := Load(dir)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, err.Error())
	assert.True(t, strings.HasPrefix(lines[0], "a.yaml:2:7: kind: unknown kind"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], `b.yaml:4:3: metadata.nam: unknown field "nam", did you mean "name"?`), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "c.yaml:1:6: invalid YAML"), lines[2])
}

func TestRepoFileRejectsSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	dir := writeTree(t, map[string]string{
		"a-base.yaml": baseYAML,
		"bad.yaml": `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: x
spec:
  import:
    certificate: link/root.pem
`,
	})
	require.NoError(t, os.WriteFile(filepath.Join(outside, "root.pem"), []byte("x"), 0o644))
	// A link to a directory stops the load itself.
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link")))
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `link: symlink to a directory`)

	// A link to a file is refused where the file is named.
	require.NoError(t, os.Remove(filepath.Join(dir, "link")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "link"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(outside, "root.pem"), filepath.Join(dir, "link", "root.pem")))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `bad.yaml:7:18: spec.import.certificate: path "link/root.pem" leaves the topology repo through a symlink`)
}

func TestFindCycles(t *testing.T) {
	tests := []struct {
		name  string
		edges map[string][]string
		want  [][]string
	}{
		{"none", map[string][]string{"a": {"b"}, "b": {"c"}}, nil},
		{"self", map[string][]string{"a": {"a"}}, [][]string{{"a", "a"}}},
		{"rotated to smallest", map[string][]string{"c": {"a"}, "a": {"b"}, "b": {"c"}}, [][]string{{"a", "b", "c", "a"}}},
		{"two", map[string][]string{"a": {"b"}, "b": {"a"}, "x": {"y"}, "y": {"x"}}, [][]string{{"a", "b", "a"}, {"x", "y", "x"}}},
		{"diamond is fine", map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []string
			for n := range tc.edges {
				nodes = append(nodes, n)
			}
			assert.Equal(t, tc.want, findCycles(nodes, tc.edges))
		})
	}
}

func TestNameRules(t *testing.T) {
	tests := []struct {
		in                    string
		subdomain, label, dns bool
	}{
		{"a", true, true, true},
		{"web-1.example.com", true, false, true},
		{"*.example.com", false, false, true},
		{"*", false, false, false},
		{"a.*.b", false, false, false},
		{"-a", false, false, false},
		{"a-", false, false, false},
		{"A", false, false, false},
		{"a..b", false, false, false},
		{"a_b", false, false, false},
		{"", false, false, false},
		{strings.Repeat("a", 63), true, true, true},
		{strings.Repeat("a", 64), false, false, false},
		{strings.Repeat("a.", 126) + "a", true, false, true},
		{strings.Repeat("a.", 127) + "a", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.subdomain, isDNS1123Subdomain(tc.in), "subdomain")
			assert.Equal(t, tc.label, isDNS1123Label(tc.in), "label")
			assert.Equal(t, tc.dns, isDNSName(tc.in), "dns name")
		})
	}
}

func TestPresetSectionMustMatchType(t *testing.T) {
	withPreset(t, "test-other", func(p *Preset) (*Expansion, error) { return nil, nil })
	_, err := Load(writeTree(t, map[string]string{"p.yaml": `apiVersion: gitca.dev/v1alpha1
kind: Preset
metadata:
  name: p
spec:
  type: test-other
  kubeadm:
    clusterName: x
`}))
	require.Error(t, err)
	assert.Equal(t, `p.yaml:7:3: spec.kubeadm: spec.kubeadm does not apply to a preset of type "test-other" (set type: kubeadm, or remove this section)`, err.Error())
}

func TestLoadSymlinkedFiles(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("password: hunter2 [\n"), 0o600))
	dir := writeTree(t, map[string]string{"real/ca.yaml": doc(docCA, "ca")})
	require.NoError(t, os.Symlink(filepath.Join(dir, "real", "ca.yaml"), filepath.Join(dir, "inside.yaml")))

	// A link inside the repo is read like any file, under its own name: the CA
	// is declared twice, once per path.
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `real/ca.yaml:4:9: metadata.name: duplicate CertificateAuthority "ca", first declared at inside.yaml:2:1`)

	require.NoError(t, os.Remove(filepath.Join(dir, "inside.yaml")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(dir, "escape.yaml")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "gone.yaml"), filepath.Join(dir, "broken.yaml")))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Equal(t, "broken.yaml:1:1: broken symlink\nescape.yaml:1:1: symlink points outside the topology repo", err.Error())
}

func TestStringFieldsTakeDatesButNotNumbers(t *testing.T) {
	top, err := Load(writeTree(t, map[string]string{"a.yaml": `apiVersion: gitca.dev/v1alpha1
kind: CertificateAuthority
metadata:
  name: ca
  labels:
    since: 2024-01-01
`}))
	require.NoError(t, err)
	assert.Equal(t, "2024-01-01", top.CA("ca").Metadata.Labels["since"])
}
