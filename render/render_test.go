package render

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// t0 is when every test history starts.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is one age identity and a state directory that runs share.
type env struct {
	t         testing.TB
	keyFile   string
	recipient string
	ids       secrets.Identities
	state     string
	topo      string
}

func newEnv(t testing.TB, topoSrc string) *env {
	t.Helper()
	id, rcp, err := secrets.GenerateAgeKey(time.Now())
	require.NoError(t, err)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "age.key")
	require.NoError(t, os.WriteFile(keyFile, id, 0o600))
	ids, err := secrets.ParseIdentities(bytes.NewReader(id))
	require.NoError(t, err)
	topo := filepath.Join(dir, "topology")
	require.NoError(t, os.CopyFS(topo, os.DirFS(topoSrc)))
	return &env{t: t, keyFile: keyFile, recipient: rcp, ids: ids, state: filepath.Join(dir, "state"), topo: topo}
}

// run renders and writes once; ids may be nil to prove nothing is decrypted.
func (e *env) run(now time.Time, ids *secrets.Identities) *Result {
	e.t.Helper()
	res, err := e.tryRun(now, ids)
	require.NoError(e.t, err)
	return res
}

func (e *env) tryRun(now time.Time, ids *secrets.Identities) (*Result, error) {
	t, err := topology.Load(e.topo)
	if err != nil {
		return nil, err
	}
	st, err := plan.ReadState(e.state)
	if err != nil {
		return nil, err
	}
	opt := Options{Options: plan.Options{Now: now, Recipients: plan.ResolveRecipients(t, []string{e.recipient})}}
	res, err := Render(context.Background(), t, st, opt, ids, rand.Reader)
	if err != nil {
		return nil, err
	}
	return res, emit.Write(e.state, res.Tree)
}

func (e *env) edit(file, old, new string) {
	e.t.Helper()
	p := filepath.Join(e.topo, file)
	b, err := os.ReadFile(p)
	require.NoError(e.t, err)
	require.Contains(e.t, string(b), old)
	require.NoError(e.t, os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}

// snapshot is every file's bytes and mtime in the state.
func (e *env) snapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	require.NoError(e.t, filepath.Walk(e.state, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(e.state, p)
		out[filepath.ToSlash(rel)] = fi.ModTime().String() + "\x00" + string(b)
		return err
	}))
	return out
}

// changedFiles lists the files that differ between two snapshots, leaving out
// the state index, which changes with every record.
func changedFiles(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v && k != plan.IndexPath {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && k != plan.IndexPath {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func actions(p *plan.Plan) map[string]plan.ActionKind {
	m := map[string]plan.ActionKind{}
	for _, a := range p.Objects {
		m[a.ID] = a.Action
	}
	return m
}

func nonKeep(p *plan.Plan) map[string]plan.ActionKind {
	m := map[string]plan.ActionKind{}
	for _, a := range p.Objects {
		if a.Action != plan.ActionKeep {
			m[a.ID] = a.Action
		}
	}
	return m
}

func TestRenderFromScratchThenNoop(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	first := e.run(t0, &e.ids)
	for id, a := range actions(first.Plan) {
		assert.Equal(t, plan.ActionCreate, a, id)
	}
	assert.Len(t, first.Plan.Objects, 8)
	before := e.snapshot()
	require.Contains(t, before, "ca/root.yaml")
	require.Contains(t, before, "clusters/prod/pki/secret-web.yaml")
	require.Contains(t, before, "clusters/prod/pki/secret-issuing-ca.yaml")
	require.Contains(t, before, "clusters/prod/pki/configmap-roots.yaml")
	require.Contains(t, before, "clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml")
	require.Contains(t, before, "clusters/prod/kustomization.yaml")
	require.Contains(t, before, ".sops.yaml")

	// No private key in plain text anywhere in the tree.
	findings, err := state.ScanPlaintextKeys(e.state)
	require.NoError(t, err)
	assert.Empty(t, findings)

	// The second run: only keeps, no identity needed, not one byte or mtime changed.
	time.Sleep(10 * time.Millisecond)
	second := e.run(t0.Add(time.Hour), nil)
	assert.Empty(t, nonKeep(second.Plan))
	assert.True(t, second.Tree.Empty(), "%v", second.Tree.Paths())
	assert.Empty(t, changedFiles(before, e.snapshot()))
}

func TestRenderTimeTravelRenewsExactlyTheWindow(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	before := e.snapshot()
	// client: 720h validity, renew a third before → window opens at day 20.
	// ops kubeconfig: same. web: 2160h, renewBefore 360h → day 75.
	res := e.run(t0.Add(21*24*time.Hour), &e.ids)
	assert.Equal(t, map[string]plan.ActionKind{
		"Certificate/client": plan.ActionRekey,
		"Kubeconfig/ops":     plan.ActionRekey,
	}, nonKeep(res.Plan))
	assert.Equal(t, []string{"clusters/prod/pki/secret-client.yaml", "clusters/prod/pki/secret-ops.yaml"}, changedFiles(before, e.snapshot()))
}

func TestRenderSANEditReissuesOneCertificate(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	before := e.snapshot()
	e.edit("leafs.yaml", "www.example.com]", "www.example.com, api.example.com]")
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, map[string]plan.ActionKind{"Certificate/web": plan.ActionReissue}, nonKeep(res.Plan))
	assert.Equal(t, []string{"clusters/prod/pki/secret-web.yaml"}, changedFiles(before, e.snapshot()))
	// With rotationPolicy Always (the leaf default) the reissue makes a new key.
	assert.True(t, res.Plan.Action("Certificate/web").NewKey())
}

func TestRenderRekeyIntermediateReissuesItsSubtree(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	e.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  keyAlgorithm: ECDSA-P384\n")
	res := e.run(t0.Add(time.Hour), &e.ids)
	t.Log(reasonsOf(res.Plan, "Kubeconfig/ops"))
	assert.Equal(t, map[string]plan.ActionKind{
		"CertificateAuthority/issuing": plan.ActionRekey,
		"Certificate/web":              plan.ActionReissue,
		"Certificate/client":           plan.ActionReissue,
		"Kubeconfig/ops":               plan.ActionReissue,
	}, nonKeep(res.Plan))
}

func TestRenderRenewCAWithSameKeyUpdatesChainsOnly(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	// issuing: 43800h validity, renewBefore defaults to 720h → renew at 43080h.
	// Every leaf below has expired by then, so instead shorten the CA's window:
	e.edit("cas.yaml", "  pathLen: 0\n", "  pathLen: 0\n  renewBefore: 43799h\n")
	res := e.run(t0.Add(2*time.Hour), &e.ids)
	got := nonKeep(res.Plan)
	assert.Equal(t, plan.ActionRenew, got["CertificateAuthority/issuing"])
	assert.Equal(t, plan.ActionUpdateChain, got["Certificate/web"])
	assert.Equal(t, plan.ActionUpdateChain, got["Certificate/client"])
	assert.NotContains(t, got, "Certificate/db-peer")
	// The leaf certificate itself is unchanged; it still verifies against the renewed CA.
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	web, ca := st.Primary["Certificate/web"].Cert(), st.Primary["CertificateAuthority/issuing"].Cert()
	require.NoError(t, web.CheckSignatureFrom(ca))
}

func TestRenderRemoveObjectDeletesItsFilesAndRBAC(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	b, err := os.ReadFile(filepath.Join(e.topo, "leafs.yaml"))
	require.NoError(t, err)
	docs := strings.Split(string(b), "---\n")
	var kept []string
	for _, d := range docs {
		if !strings.Contains(d, "kind: Kubeconfig") {
			kept = append(kept, d)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(e.topo, "leafs.yaml"), []byte(strings.Join(kept, "---\n")), 0o644))
	res := e.run(t0.Add(time.Hour), nil)
	assert.Equal(t, map[string]plan.ActionKind{"Kubeconfig/ops": plan.ActionDelete}, nonKeep(res.Plan))
	assert.NotEmpty(t, res.Plan.Action("Kubeconfig/ops").Notes, "a deleted kubeconfig's certificate stays valid")
	assert.NoFileExists(t, filepath.Join(e.state, "clusters/prod/pki/secret-ops.yaml"))
	assert.NoFileExists(t, filepath.Join(e.state, "clusters/prod/rbac/clusterrolebinding-gitca-kubeconfig-ops-view.yaml"))
	k, err := os.ReadFile(filepath.Join(e.state, "clusters/prod/kustomization.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(k), "ops")
}

func TestRenderNeedsIdentityOnlyToSign(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	before := e.snapshot()
	e.edit("leafs.yaml", "www.example.com]", "www2.example.com]")
	_, err := e.tryRun(t0.Add(time.Hour), nil)
	require.ErrorIs(t, err, apply.ErrNeedIdentity)
	assert.Contains(t, err.Error(), "ca/issuing.yaml", "the error names the CA key it could not open")
	assert.Empty(t, changedFiles(before, e.snapshot()), "a failed run writes nothing")
}

func TestRenderedFilesDecryptWithSopsCLI(t *testing.T) {
	sops, err := exec.LookPath("sops")
	if err != nil {
		t.Skip("sops CLI not installed: run `make tools`")
	}
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	for _, f := range []string{"ca/root.yaml", "clusters/prod/pki/secret-web.yaml", "clusters/prod/pki/secret-ops.yaml", "clusters/prod/pki/secret-sa.yaml"} {
		cmd := exec.Command(sops, "--decrypt", filepath.Join(e.state, f))
		cmd.Env = append(os.Environ(), "SOPS_AGE_KEY_FILE="+e.keyFile, "SOPS_DISABLE_VERSION_CHECK=1")
		out, err := cmd.Output()
		require.NoError(t, err, "sops --decrypt %s", f)
		// Assert without printing: the output holds private keys.
		want := "PRIVATE KEY"
		if strings.Contains(f, "ops") {
			want = "client-key-data: "
		}
		assert.True(t, strings.Contains(string(out), want), "%s decrypts to a private key", f)
	}
}

func reasonsOf(p *plan.Plan, id string) []plan.Reason { return p.Action(id).Reasons }

func TestStateIndexIsACacheNeverTheTruth(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	assert.Equal(t, 0, st.Parsed, "every record is vouched for by the index")
	web := st.Primary["Certificate/web"]
	require.NotNil(t, web)
	assert.Equal(t, web.Cert().NotAfter.UTC(), web.NotAfter, "index summary matches the certificate")

	// A hand edit changes the bytes: the record is parsed, and what it says wins.
	p := filepath.Join(e.state, "clusters/prod/pki/secret-web.yaml")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	edited := strings.Replace(string(b), "gitca.dev/spec-hash:", "gitca.dev/edited: \"yes\"\n        gitca.dev/spec-hash:", 1)
	require.NotEqual(t, string(b), edited)
	require.NoError(t, os.WriteFile(p, []byte(edited), 0o644))
	st, err = plan.ReadState(e.state)
	require.NoError(t, err)
	assert.Equal(t, 1, st.Parsed)
	assert.Equal(t, "yes", st.Primary["Certificate/web"].Annotations["gitca.dev/edited"])
}

// TestStateIndexMatchesParsedRecords: the index a render writes from the
// records it sealed (not parsing them again) says what parsing them says.
func TestStateIndexMatchesParsedRecords(t *testing.T) {
	for _, src := range []string{"testdata/basic", "../examples/kcp"} {
		t.Run(src, func(t *testing.T) {
			e := newEnv(t, src)
			e.run(t0, &e.ids)
			// Renewals reseal existing files (kept ciphertexts) rather than seal anew.
			res := e.run(t0.Add(24*time.Hour*300), &e.ids)
			require.True(t, res.Plan.Changes())

			fromIndex, err := plan.ReadState(e.state)
			require.NoError(t, err)
			require.Zero(t, fromIndex.Parsed, "every record is vouched for by the index")
			require.NoError(t, os.Remove(filepath.Join(e.state, plan.IndexPath)))
			parsed, err := plan.ReadState(e.state)
			require.NoError(t, err)
			require.Equal(t, len(parsed.Primary)+len(parsed.Copies), parsed.Parsed)

			summary := func(o *state.Object) any {
				return []any{o.ID, o.Role, o.Path, o.Annotations, o.Recipients, o.Problems,
					o.NotBefore.UTC(), o.NotAfter.UTC(), hex.EncodeToString(o.AKI), hex.EncodeToString(o.SKI), o.HasCert()}
			}
			require.Len(t, fromIndex.Primary, len(parsed.Primary))
			for id, o := range parsed.Primary {
				require.Contains(t, fromIndex.Primary, id)
				assert.Equal(t, summary(o), summary(fromIndex.Primary[id]), id)
			}
			require.Len(t, fromIndex.Copies, len(parsed.Copies))
			for p, o := range parsed.Copies {
				require.Contains(t, fromIndex.Copies, p)
				assert.Equal(t, summary(o), summary(fromIndex.Copies[p]), p)
			}
		})
	}
}

// swapCertificate re-seals the client's record, validly, with web's
// certificate in it: the MAC holds, the public parts look right (same issuer,
// same stored spec), and the key no longer matches the certificate.
func swapCertificate(t *testing.T, e *env) {
	t.Helper()
	read := func(p string) map[string]any {
		raw, err := os.ReadFile(filepath.Join(e.state, p))
		require.NoError(t, err)
		plain, err := secrets.Open(raw, e.ids)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(plain, &doc))
		return doc
	}
	client, web := read("clusters/prod/pki/secret-client.yaml"), read("clusters/prod/pki/secret-web.yaml")
	client["stringData"].(map[string]any)["tls.crt"] = web["stringData"].(map[string]any)["tls.crt"]
	plain, err := yaml.Marshal(client)
	require.NoError(t, err)
	sealed, err := secrets.Seal(plain, []string{e.recipient}, t0)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.state, "clusters/prod/pki/secret-client.yaml"), sealed, 0o644))
}

func TestVerifyState(t *testing.T) {
	keyMismatch := []plan.Reason{{Code: plan.ReasonDamaged, Detail: "private key does not match the certificate in tls.crt"}}
	for _, c := range []struct {
		name       string
		dropIndex  bool // the tampering also rewrote the index, or there is none
		verifyAll  bool
		noIdentity bool
		want       []plan.Reason // for Certificate/client; nil: kept
		wantWarn   string
		wantErr    string
	}{
		{name: "changed outside gitca, checked with an identity", want: keyMismatch},
		{name: "changed outside gitca, no identity: kept, and the plan says so", noIdentity: true,
			wantWarn: "1 record(s) changed outside gitca, not verified without an age identity (SOPS MAC, key matching certificate); a run with one checks them: clusters/prod/pki/secret-client.yaml"},
		{name: "index gone: only --verify finds it", dropIndex: true},
		{name: "index gone, --verify", dropIndex: true, verifyAll: true, want: keyMismatch},
		{name: "--verify without an identity", verifyAll: true, noIdentity: true, wantErr: "an age identity is needed to verify the state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "testdata/basic")
			e.run(t0, &e.ids)
			swapCertificate(t, e)
			if c.dropIndex {
				require.NoError(t, os.Remove(filepath.Join(e.state, plan.IndexPath)))
			}
			topo, err := topology.Load(e.topo)
			require.NoError(t, err)
			st, err := plan.ReadState(e.state)
			require.NoError(t, err)
			ids := &e.ids
			if c.noIdentity {
				ids = nil
			}
			err = apply.Verify(st, ids, c.verifyAll)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			p, err := plan.Make(topo, st, plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(topo, []string{e.recipient})})
			require.NoError(t, err)
			assert.Equal(t, c.want, p.Action("Certificate/client").Reasons)
			if c.want == nil {
				// The record is kept; only the index, which no longer
				// describes it, is rewritten, and the plan says so.
				require.Len(t, p.Files, 1)
				assert.Equal(t, plan.IndexPath, p.Files[0].Path)
				assert.Equal(t, plan.FileIndex, p.Files[0].Kind)
			} else {
				assert.Equal(t, map[string]plan.ActionKind{"Certificate/client": plan.ActionRekey}, nonKeep(p))
			}
			if c.wantWarn != "" {
				assert.Contains(t, p.Warnings, c.wantWarn)
			} else {
				assert.Empty(t, p.Warnings)
			}
		})
	}
}

// TestRenderRenameKeepingTheSecret: an object renamed while its Secret keeps
// its name hands the file to the new object; the old one's delete must not
// take the file with it.
func TestRenderRenameKeepingTheSecret(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	e.edit("leafs.yaml", "metadata:\n  name: web\nspec:\n  issuer: issuing\n  profile: server\n", "metadata:\n  name: web2\nspec:\n  issuer: issuing\n  profile: server\n")
	e.edit("leafs.yaml", "  renewBefore: 360h\n  secret:\n    cluster: prod\n", "  renewBefore: 360h\n  secret:\n    cluster: prod\n    name: web\n")
	res := e.run(t0.Add(time.Hour), &e.ids)
	assert.Equal(t, map[string]plan.ActionKind{"Certificate/web": plan.ActionDelete, "Certificate/web2": plan.ActionCreate}, nonKeep(res.Plan))
	assert.NotContains(t, res.Tree.Delete, "clusters/prod/pki/secret-web.yaml")
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	require.Contains(t, st.Primary, "Certificate/web2")
	assert.Equal(t, "clusters/prod/pki/secret-web.yaml", st.Primary["Certificate/web2"].Path)
	assert.NotContains(t, st.Primary, "Certificate/web")
	assert.False(t, e.run(t0.Add(time.Hour), &e.ids).Plan.Changes(), "converged")
}

// TestRenderCustomClusterPath: a cluster whose overlay lives elsewhere
// (spec.clusters[].path) converges like any other: its records are found
// where they were written, the second render writes nothing, and moving the
// overlay back removes everything gitca left at the old path.
func TestRenderCustomClusterPath(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.edit("config.yaml", "      namespace: pki\n", "      namespace: pki\n      path: overlays/prod\n")
	first := e.run(t0, &e.ids)
	assert.Contains(t, first.Tree.Write, "overlays/prod/pki/secret-web.yaml")
	assert.Contains(t, string(first.Tree.Write["flux/prod/gitca-kustomization.yaml"]), "path: ./overlays/prod\n")
	for p := range first.Tree.Write {
		assert.False(t, strings.HasPrefix(p, "clusters/"), p)
	}
	before := e.snapshot()
	second := e.run(t0.Add(time.Hour), nil)
	assert.False(t, second.Plan.Changes(), "%v", second.Plan.Lines())
	assert.Equal(t, before, e.snapshot())

	e.edit("config.yaml", "      path: overlays/prod\n", "")
	moved := e.run(t0.Add(2*time.Hour), &e.ids)
	assert.Contains(t, moved.Tree.Write, "clusters/prod/pki/secret-web.yaml")
	for p := range e.snapshot() {
		assert.False(t, strings.HasPrefix(p, "overlays/"), "%s is left behind", p)
	}
	assert.False(t, e.run(t0.Add(3*time.Hour), nil).Plan.Changes())
}

// TestPlanWithoutRecipientsKeepsSopsConfig: a plan that knows no recipients
// (no Config recipients, no SOPS_AGE_RECIPIENTS, no identity: a pull-request
// check) cannot write .sops.yaml anew, and must not plan to delete it.
func TestPlanWithoutRecipientsKeepsSopsConfig(t *testing.T) {
	e := newEnv(t, "testdata/basic")
	e.run(t0, &e.ids)
	top, err := topology.Load(e.topo)
	require.NoError(t, err)
	st, err := plan.ReadState(e.state)
	require.NoError(t, err)
	p, err := plan.Make(top, st, plan.Options{Now: t0.Add(time.Hour), Recipients: plan.ResolveRecipients(top, nil)})
	require.NoError(t, err)
	assert.False(t, p.Changes(), "%v", p.Lines())
}
