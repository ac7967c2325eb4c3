package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func caDoc(spec string) string {
	return "apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata:\n  name: etcd\nspec:\n" + spec
}

func TestCRLPolicyForms(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		validity time.Duration // 0: no policy
		renew    time.Duration
	}{
		{"  crl: true\n", DefaultCRLValidity, DefaultCRLValidity / 3},
		{"  crl: false\n", 0, 0},
		{"  validity: 1h\n", 0, 0},
		{"  crl:\n    validity: 7d\n", 7 * 24 * time.Hour, 56 * time.Hour},
		{"  crl: {validity: 240h, renewBefore: 48h}\n", 240 * time.Hour, 48 * time.Hour},
	} {
		t.Run(strings.TrimSpace(tc.spec), func(t *testing.T) {
			top, err := Load(writeTree(t, map[string]string{"ca.yaml": caDoc(tc.spec)}))
			require.NoError(t, err)
			p := top.CA("etcd").Spec.CRL
			if tc.validity == 0 {
				assert.Nil(t, p)
				return
			}
			require.NotNil(t, p)
			v, rb := p.Get()
			assert.Equal(t, tc.validity, v)
			assert.Equal(t, tc.renew, rb)
		})
	}
}

func TestCRLPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"  crl: yes please\n", `ca.yaml:6:8: spec.crl: expected true, false, or a mapping with validity and renewBefore, got a string`},
		{"  crl:\n    valdity: 1h\n", `ca.yaml:7:5: spec.crl: unknown field "valdity" in crl (allowed: renewBefore, validity)`},
		{"  crl:\n    validity: 1h\n    renewBefore: 2h\n", `ca.yaml:6:3: spec.crl.renewBefore: renewBefore 2h must be shorter than validity 1h`},
		{"  crl: true\n  import:\n    certificate: root.crt\n", `ca.yaml:6:8: spec.crl: an offline CA (imported without its key) cannot sign a revocation list here`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load(writeTree(t, map[string]string{"ca.yaml": caDoc(tc.spec), "root.crt": string(makeCert(t, "root", nil, true, true).pem)}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestKubeadmEtcdCAPublishesACRL(t *testing.T) {
	top, err := Load("../examples/kubeadm")
	require.NoError(t, err)
	for _, ca := range top.CAs {
		assert.Equal(t, ca.Metadata.Name == "demo-etcd-ca", ca.Spec.CRL != nil, ca.Metadata.Name)
	}
}
