package state

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/secrets"
)

// sealedTLSSecret is a kubernetes.io/tls Secret record as the renderer seals it.
func sealedTLSSecret(t testing.TB, k testpki.AgeKey) []byte {
	t.Helper()
	crt, key := testpki.PEMPair(t, "demo-apiserver")
	doc := secrets.Doc{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
		"metadata": secrets.Doc{"name": "demo-apiserver", "namespace": "kube-system",
			"annotations": map[string]string{AnnotationObject: "Certificate/demo-apiserver", AnnotationRole: RolePrimary}},
		"stringData": map[string]string{"ca.crt": crt, "tls.crt": crt, "tls.key": key},
	}
	sealed, err := secrets.SealDoc(doc, []string{k.Recipient}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	return sealed
}
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// pemBody is the base64 lines of a PEM block, without its markers.
func pemBody(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}
