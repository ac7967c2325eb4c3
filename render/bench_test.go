package render

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/topology"
)

// writeBenchTopology writes a three-level CA tree (root → 2 intermediates → 4
// issuing CAs) and n server certificates spread over the issuing CAs. Every
// hundredth leaf lives 720h instead of 8760h, so moving the clock to
// t0+500h puts exactly 1% of the leafs in their renewal window.
func writeBenchTopology(tb testing.TB, dir string, n int) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata: {name: bench}\nspec:\n  clusters: [{name: prod, namespace: pki}]\n")
	doc := func(s string, args ...any) { fmt.Fprintf(&b, "---\n"+s, args...) }
	doc("apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: root}\nspec: {validity: 87600h}\n")
	for i := 0; i < 2; i++ {
		doc("apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: inter-%d}\nspec: {issuer: root, validity: 43800h}\n", i)
		for j := 0; j < 2; j++ {
			doc("apiVersion: gitca.dev/v1alpha1\nkind: CertificateAuthority\nmetadata: {name: issuing-%d-%d}\nspec: {issuer: inter-%d, validity: 26280h, pathLen: 0}\n", i, j, i)
		}
	}
	require.NoError(tb, os.WriteFile(filepath.Join(dir, "cas.yaml"), []byte(b.String()), 0o644))
	for f := 0; f*1000 < n; f++ {
		b.Reset()
		for i := f * 1000; i < n && i < (f+1)*1000; i++ {
			validity := "8760h"
			if i%100 == 0 {
				validity = "720h"
			}
			doc("apiVersion: gitca.dev/v1alpha1\nkind: Certificate\nmetadata: {name: leaf-%05d}\nspec:\n  issuer: issuing-%d-%d\n  profile: server\n  dnsNames: [leaf-%05d.svc.example.com]\n  validity: %s\n  secret: {cluster: prod}\n",
				i, i%2, (i/2)%2, i, validity)
		}
		require.NoError(tb, os.WriteFile(filepath.Join(dir, fmt.Sprintf("leafs-%02d.yaml", f)), []byte(b.String()), 0o644))
	}
}

// benchEnv is a rendered state of n leafs, made once per size and copied per iteration.
type benchEnv struct {
	*env
	n int
}

// newBenchEnv renders n leafs once; call it on the top-level benchmark so the
// state outlives the sub-benchmarks that use it.
func newBenchEnv(b testing.TB, n int) *benchEnv {
	src := b.TempDir()
	writeBenchTopology(b, src, n)
	e := &benchEnv{env: newEnv(b, src), n: n}
	e.run(t0, &e.ids)
	return e
}

func (e *benchEnv) load(b testing.TB) (*topology.Topology, Options) {
	t, err := topology.Load(e.topo)
	require.NoError(b, err)
	return t, Options{Options: plan.Options{Recipients: plan.ResolveRecipients(t, []string{e.recipient})}}
}

func copyState(b *testing.B, src string) string {
	dst := filepath.Join(b.TempDir(), "state")
	require.NoError(b, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

// scratch holds the state trees BenchmarkFullRender writes, removed when the
// test binary exits rather than after each round of the benchmark: removing
// thousands of files just before the next round makes every create on ext4
// without a journal scan the freed inodes (see Write), and the benchmark would
// measure its own clean-up. BENCHMARKS.md gives both figures.
var scratch struct {
	once sync.Once
	dir  string
	err  error
}

func scratchDir(b *testing.B) string {
	scratch.once.Do(func() { scratch.dir, scratch.err = os.MkdirTemp("", "gitca-bench-") })
	require.NoError(b, scratch.err)
	d, err := os.MkdirTemp(scratch.dir, "")
	require.NoError(b, err)
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	if scratch.dir != "" {
		os.RemoveAll(scratch.dir)
	}
	os.Exit(code)
}

func perCert(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/cert")
}

// BenchmarkFullRender signs and seals n leafs (and 7 CAs) into an empty state
// and writes them, with and without the kustomize overlay check.
func BenchmarkFullRender(b *testing.B) {
	for _, n := range []int{1000} {
		for _, check := range []bool{true, false} {
			name := fmt.Sprint(n)
			if !check {
				name += "/no-overlay-check"
			}
			b.Run(name, func(b *testing.B) { benchFullRender(b, n, check) })
		}
	}
}

func benchFullRender(b *testing.B, n int, check bool) {
	src := b.TempDir()
	writeBenchTopology(b, src, n)
	e := newEnv(b, src)
	t, opt := (&benchEnv{env: e}).load(b)
	opt.Now = t0
	opt.SkipOverlayCheck = !check
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(scratchDir(b), "state")
		st, err := plan.ReadState(dir)
		require.NoError(b, err)
		res, err := Render(context.Background(), t, st, opt, &e.ids, rand.Reader)
		require.NoError(b, err)
		require.NoError(b, emit.Write(dir, res.Tree))
	}
	perCert(b, n)
}

// BenchmarkNoopPlan reads a rendered state and plans it against its own
// topology: all keeps, no identity at all, nothing decrypted.
func BenchmarkNoopPlan(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		e := newBenchEnv(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t, opt := e.load(b)
				opt.Now = t0.Add(time.Hour)
				st, err := plan.ReadState(e.state)
				require.NoError(b, err)
				p, err := plan.Make(t, st, opt.Options)
				require.NoError(b, err)
				if p.Changes() {
					b.Fatalf("no-op plan has changes: %s", p.Summary())
				}
			}
			perCert(b, n)
		})
	}
}

// BenchmarkRenewOnePercent renews the 1% of leafs whose window has opened;
// everything is counted: reading, planning, unsealing the issuers, signing, sealing, writing.
func BenchmarkRenewOnePercent(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		e := newBenchEnv(b, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := copyState(b, e.state)
				b.StartTimer()
				t, opt := e.load(b)
				opt.Now = t0.Add(500 * time.Hour)
				st, err := plan.ReadState(dir)
				require.NoError(b, err)
				res, err := Render(context.Background(), t, st, opt, &e.ids, rand.Reader)
				require.NoError(b, err)
				if got := res.Plan.Counts()[plan.ActionRekey]; got != n/100 {
					b.Fatalf("renewed %d, want %d", got, n/100)
				}
				require.NoError(b, emit.Write(dir, res.Tree))
			}
			perCert(b, n)
		})
	}
}

// BenchmarkRenderKubeadm renders examples/kubeadm from scratch: 3 CAs, 14 certificates, 1 key pair, 12 kubeconfigs.
func BenchmarkRenderKubeadm(b *testing.B) {
	e := newEnv(b, "../examples/kubeadm")
	t, opt := (&benchEnv{env: e}).load(b)
	opt.Now = t0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := plan.ReadState(filepath.Join(b.TempDir(), "state"))
		require.NoError(b, err)
		_, err = Render(context.Background(), t, st, opt, &e.ids, rand.Reader)
		require.NoError(b, err)
	}
}
