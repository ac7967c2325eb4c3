package apply

import (
	"encoding/json"
	"testing"

	"github.com/gitca-dev/gitca/plan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretManifestDocIsItsJSON: the Doc sealed for a manifest has the fields,
// names and omissions of the manifest's JSON form, the one sigs.k8s.io/yaml
// renders; secrets.TestSealDocMatchesSeal takes it from there to the bytes.
func TestSecretManifestDocIsItsJSON(t *testing.T) {
	full := secretManifest{APIVersion: "v1", Kind: "Secret", Type: "kubernetes.io/tls",
		Metadata: plan.Meta{Name: "etcd-server", Namespace: "kube-system",
			Labels:      map[string]string{"app.kubernetes.io/managed-by": "gitca"},
			Annotations: map[string]string{"gitca.dev/object": "Certificate/etcd-server"}},
		StringData: map[string]string{"tls.crt": "PEM", "tls.key": "KEY"}}
	for name, s := range map[string]secretManifest{
		"full":              full,
		"cluster-scoped":    {APIVersion: "v1", Kind: "Secret", Type: "Opaque", Metadata: plan.Meta{Name: "ca"}, StringData: map[string]string{}},
		"no data":           {APIVersion: "v1", Kind: "Secret", Metadata: plan.Meta{Name: "x", Labels: map[string]string{}}},
		"empty annotations": {APIVersion: "v1", Kind: "Secret", Metadata: plan.Meta{Name: "x", Annotations: map[string]string{}}, StringData: map[string]string{"a": ""}},
	} {
		t.Run(name, func(t *testing.T) {
			viaJSON := func(v any) any {
				b, err := json.Marshal(v)
				require.NoError(t, err)
				var out any
				require.NoError(t, json.Unmarshal(b, &out))
				return out
			}
			assert.Equal(t, viaJSON(&s), viaJSON(s.doc()))
		})
	}
}
