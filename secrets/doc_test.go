package secrets

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// sigsKeyOrder is the order in which sigs.k8s.io/yaml writes a map's keys.
func sigsKeyOrder(t testing.TB, keys []string) []string {
	m := map[string]string{}
	for _, k := range keys {
		m[k] = "v"
	}
	out, err := sigsyaml.Marshal(m)
	require.NoError(t, err)
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal(out, &n))
	var got []string
	for i := 0; i < len(n.Content[0].Content); i += 2 {
		got = append(got, n.Content[0].Content[i].Value)
	}
	return got
}

func TestYAMLKeyOrderMatchesSigsYAML(t *testing.T) {
	cases := [][]string{
		{"apiVersion", "kind", "metadata", "stringData", "type"},
		{"tls.crt", "tls.key", "ca.crt", "ca.key", "kubeconfig", "tls.pub", "sa.key"},
		{"gitca.dev/spec", "gitca.dev/spec-hash", "gitca.dev/object", "gitca.dev/role", "gitca.dev/not-after", "app.kubernetes.io/managed-by"},
		{"a10", "a9", "a09", "a009", "a1", "a01", "a0", "a00"},
		{"x_y", "xAy", "x-y", "x.y", "x/y", "xay", "x0y", "X", "_", "-"},
		{"é", "e", "z", "Z", "٣", "3", "~", "ü1", "ü10"},
	}
	// Keys as Kubernetes allows them in annotations and labels, plus a few
	// characters it does not, drawn from a fixed seed so a failure reproduces.
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aAbZz09_-./é٣")
	for range 300 {
		var keys []string
		for range 2 + r.IntN(8) {
			var b strings.Builder
			for range 1 + r.IntN(6) {
				b.WriteRune(alphabet[r.IntN(len(alphabet))])
			}
			keys = append(keys, b.String())
		}
		cases = append(cases, keys)
	}
	compared := 0
	for _, keys := range cases {
		want, ok := stableSigsKeyOrder(t, keys)
		if !ok {
			continue
		}
		compared++
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		require.Equal(t, want, sortedKeys(m), "keys %q", keys)
	}
	// Only odd keys (leading zeros next to other digit runs) lack a stable order.
	assert.Greater(t, compared, len(cases)*9/10)
}

// stableSigsKeyOrder is sigsKeyOrder when it is the same on every try. Go-yaml's
// comparison is not transitive for some keys with leading zeros, and it sorts
// map keys taken in Go's random map order, so for those keys its own output
// varies from one run to the next and there is no order to match.
func stableSigsKeyOrder(t testing.TB, keys []string) ([]string, bool) {
	first := sigsKeyOrder(t, keys)
	for range 16 {
		if !slices.Equal(first, sigsKeyOrder(t, keys)) {
			return nil, false
		}
	}
	return first, true
}

func FuzzYAMLKeyOrder(f *testing.F) {
	f.Add("a10", "a9", "b")
	f.Add("x_y", "xAy", "x-y")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		if !utf8Keys(a, b, c) {
			t.Skip()
		}
		want, ok := stableSigsKeyOrder(t, []string{a, b, c})
		if !ok {
			t.Skip("go-yaml has no stable order for these keys")
		}
		require.Equal(t, want, sortedKeys(map[string]bool{a: true, b: true, c: true}))
	})
}

// utf8Keys skips what JSON would rewrite (invalid UTF-8), what YAML would read
// back differently (control characters in keys) and keys longer than
// Kubernetes allows (317 bytes: a 253-byte prefix, a slash, a 63-byte name),
// which YAML writes in another form.
func utf8Keys(keys ...string) bool {
	for _, k := range keys {
		if len(k) <= 317 && !strings.ContainsFunc(k, func(r rune) bool { return r < ' ' || r == 0x7f || r == 0xfffd || r >= 0x80 && r < 0xa0 }) &&
			json.Valid([]byte(`"`+strings.ReplaceAll(strings.ReplaceAll(k, `\`, `\\`), `"`, `\"`)+`"`)) {
			continue
		}
		return false
	}
	return true
}

// asDoc is the Doc a renderer would build for m: its JSON form, as data.
func asDoc(t testing.TB, m any) Doc {
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var d Doc
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// TestSealDocMatchesSeal: sealing a Doc and sealing its sigs.k8s.io/yaml
// rendering give the same tree, so the same bytes once opened.
func TestSealDocMatchesSeal(t *testing.T) {
	k := newTestKey(t)
	withAnnotations := tlsSecret(t)
	withAnnotations.Metadata.Annotations["example.com/a10"] = "yes"
	withAnnotations.Metadata.Annotations["example.com/a9"] = "1:20"
	withAnnotations.Metadata.Annotations["example.com/x_Y"] = ""
	for name, m := range map[string]manifest{
		"tls": tlsSecret(t), "ca": caSecret(t), "kubeconfig": kubeconfigSecret(t), "sa": saKeySecret(t),
		"annotations": withAnnotations,
	} {
		t.Run(name, func(t *testing.T) {
			plain, err := sigsyaml.Marshal(m)
			require.NoError(t, err)
			want, err := loadPlain(plain)
			require.NoError(t, err)
			got, err := docBranches(asDoc(t, m))
			require.NoError(t, err)
			assert.Equal(t, want, got)

			viaYAML, err := Seal(plain, []string{k.recipient}, testNow)
			require.NoError(t, err)
			viaDoc, err := SealDoc(asDoc(t, m), []string{k.recipient}, testNow)
			require.NoError(t, err)
			a, err := Open(viaYAML, k.ids)
			require.NoError(t, err)
			b, err := Open(viaDoc, k.ids)
			require.NoError(t, err)
			assert.Equal(t, string(a), string(b))

			// Resealing the same content from a Doc keeps the file as it is.
			again, err := ResealDoc(asDoc(t, m), viaDoc, []string{k.recipient}, k.ids, testNow)
			require.NoError(t, err)
			assert.Equal(t, string(viaDoc), string(again))
		})
	}
}

func TestDocRejectsOtherValues(t *testing.T) {
	_, err := SealDoc(Doc{"metadata": Doc{"generation": 3}}, []string{newTestKey(t).recipient}, testNow)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "metadata.generation: a Doc holds strings and maps, not int")
}
