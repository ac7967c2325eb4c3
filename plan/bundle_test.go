package plan

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

func subjects(certs []*x509.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, c.Subject.CommonName+"@"+c.NotAfter.UTC().Format("2006"))
	}
	return out
}

func TestMergeBundle(t *testing.T) {
	now := t0
	k1, k2, k3 := testpki.Key(t), testpki.Key(t), testpki.Key(t)
	y := func(n int) time.Time { return t0.AddDate(n, 0, 0) }
	a2030 := testpki.Root(t, "a", k1, y(-1), y(4))
	a2035 := testpki.Root(t, "a", k1, y(-1), y(9)) // renewed with the same key
	aRekeyed := testpki.Root(t, "a", k2, y(-1), y(6))
	b := testpki.Root(t, "b", k3, y(-1), y(4))
	expired := testpki.Root(t, "c", testpki.Key(t), y(-2), now.Add(-time.Second))
	lastSecond := testpki.Root(t, "d", testpki.Key(t), y(-2), now)

	for _, c := range []struct {
		name string
		in   []*x509.Certificate
		want []string
	}{
		{"sorted by subject", []*x509.Certificate{b, a2030}, []string{"a@2030", "b@2030"}},
		{"one key is one trust anchor: the newest certificate stands for it", []*x509.Certificate{a2030, a2035}, []string{"a@2035"}},
		{"same certificate twice", []*x509.Certificate{b, b}, []string{"b@2030"}},
		{"a re-keyed CA overlaps its predecessor, oldest first", []*x509.Certificate{aRekeyed, a2030}, []string{"a@2030", "a@2032"}},
		{"expired certificates are dropped", []*x509.Certificate{expired, b}, []string{"b@2030"}},
		{"valid through its last second", []*x509.Certificate{lastSecond}, []string{"d@2026"}},
		{"nothing left", []*x509.Certificate{expired}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, subjects(mergeBundle(c.in, now)))
			// The result does not depend on the order of the sources.
			rev := make([]*x509.Certificate, len(c.in))
			for i, x := range c.in {
				rev[len(c.in)-1-i] = x
			}
			assert.Equal(t, sign.EncodeCertsPEM(mergeBundle(c.in, now)...), sign.EncodeCertsPEM(mergeBundle(rev, now)...))
		})
	}
}

func TestBundleCerts(t *testing.T) {
	y := func(n int) time.Time { return t0.AddDate(n, 0, 0) }
	cas := map[string]*x509.Certificate{
		"root":  testpki.Root(t, "root", testpki.Key(t), y(-1), y(9)),
		"shard": testpki.Root(t, "shard", testpki.Key(t), y(-1), y(5)),
		"proxy": testpki.Root(t, "proxy", testpki.Key(t), y(-1), y(5)),
	}
	caCert := func(n string) ([]*x509.Certificate, []string) {
		if c := cas[n]; c != nil {
			return []*x509.Certificate{c}, nil
		}
		return nil, nil
	}
	dir := t.TempDir()
	partner := testpki.Root(t, "partner", testpki.Key(t), y(-1), y(3))
	gone := testpki.Root(t, "gone", testpki.Key(t), y(-3), y(-1))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "imported.pem"), sign.EncodeCertsPEM(gone, partner, cas["root"]), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.pem"), []byte("not a certificate\n"), 0o644))

	bundle := func(name string, src ...topology.BundleSource) *topology.TrustBundle {
		return &topology.TrustBundle{Metadata: topology.ObjectMeta{Name: name}, Spec: topology.TrustBundleSpec{Sources: src}}
	}
	top := &topology.Topology{Root: dir, TrustBundles: []*topology.TrustBundle{
		bundle("base", topology.BundleSource{CA: "root"}),
		// A diamond: base reached through two parents.
		bundle("shard", topology.BundleSource{Bundle: "base"}, topology.BundleSource{CA: "shard"}),
		bundle("proxy", topology.BundleSource{Bundle: "base"}, topology.BundleSource{CA: "proxy"}),
		bundle("all", topology.BundleSource{Bundle: "shard"}, topology.BundleSource{Bundle: "proxy"}, topology.BundleSource{File: "imported.pem"}),
		bundle("missing-ca", topology.BundleSource{CA: "nope"}),
		bundle("missing-bundle", topology.BundleSource{Bundle: "nope"}),
		bundle("missing-file", topology.BundleSource{File: "nope.pem"}),
		bundle("bad-file", topology.BundleSource{File: "empty.pem"}),
	}}
	for _, c := range []struct {
		name    string
		want    []string
		wantErr string
	}{
		{"base", []string{"root@2035"}, ""},
		{"shard", []string{"root@2035", "shard@2031"}, ""},
		// Inherited twice and imported once, root appears once; the expired import is gone.
		{"all", []string{"partner@2029", "proxy@2031", "root@2035", "shard@2031"}, ""},
		{"missing-ca", nil, "trust bundle missing-ca: spec.sources[0].ca: nope has no certificate"},
		{"missing-bundle", nil, "trust bundle nope does not exist"},
		{"missing-file", nil, "trust bundle missing-file: spec.sources[0].file"},
		{"bad-file", nil, "trust bundle bad-file: spec.sources[0].file empty.pem"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := BundleCerts(top, c.name, t0, caCert)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, subjects(got))
		})
	}
	// A CA signed later in the run is left out and named, so a plan can say what enters.
	got, pending, err := BundleCerts(top, "all", t0, func(n string) ([]*x509.Certificate, []string) {
		if n == "shard" {
			return nil, []string{"shard"}
		}
		return caCert(n)
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"shard"}, pending)
	assert.Equal(t, []string{"partner@2029", "proxy@2031", "root@2035"}, subjects(got))
}
