package render

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gitca-dev/gitca/apply"
	"github.com/gitca-dev/gitca/emit"
	"github.com/gitca-dev/gitca/internal/testpki"
	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// propertyModel is what the property test varies on top of an example: the
// Config (cluster path, flavour, recipients), and an extra file of objects
// (a CA, certificates with SANs, kubeconfigs with roles, a trust bundle with
// a PEM file of its own), rewritten after every edit.
type propertyModel struct {
	example    string // examples/<name>
	cluster    string
	namespace  string
	exampleCA  string // a CA of the example, for issuing across trees
	path       string // "" or overlays/<cluster>
	ksops      bool
	recipients []string
	extraCA    bool
	certs      map[string]*propCert
	kubeconfig map[string][]string // name → cluster roles
	bundle     []string            // sources: "ca:<name>" or "file"
	pemCerts   int                 // certificates in the bundle's PEM file
	sanEdit    bool                // an edit of the example's own files
	days       int                 // how far the clock has moved
}

type propCert struct {
	issuer string
	sans   []string
	secret string // the Secret's name, kept across renames
}

func (m *propertyModel) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: gitca.dev/v1alpha1\nkind: Config\nmetadata:\n  name: gitca\n  annotations:\n    gitca.dev/argocd-repo-url: https://git.example.com/state.git\nspec:\n  clusters:\n    - name: %s\n      namespace: %s\n", m.cluster, m.namespace)
	if m.ksops {
		b.WriteString("      flavour: ksops\n")
	}
	if m.path != "" {
		fmt.Fprintf(&b, "      path: %s\n", m.path)
	}
	if len(m.recipients) > 0 {
		b.WriteString("      recipients:\n")
		for _, r := range m.recipients {
			fmt.Fprintf(&b, "        - %s\n", r)
		}
	}
	return b.String()
}

func (m *propertyModel) extra() string {
	var docs []string
	issuer := m.exampleCA
	if m.extraCA {
		docs = append(docs, "kind: CertificateAuthority\nmetadata:\n  name: prop-ca\nspec:\n  subject:\n    commonName: Property CA\n")
		issuer = "prop-ca"
	}
	for _, name := range sortedNames(m.certs) {
		c := m.certs[name]
		iss := c.issuer
		if iss == "prop-ca" && !m.extraCA {
			iss = m.exampleCA
		}
		docs = append(docs, fmt.Sprintf("kind: Certificate\nmetadata:\n  name: %s\nspec:\n  issuer: %s\n  profile: server\n  dnsNames: [%s]\n  secret:\n    cluster: %s\n    namespace: apps\n    name: %s\n",
			name, iss, strings.Join(c.sans, ", "), m.cluster, c.secret))
	}
	for _, name := range sortedNames(m.kubeconfig) {
		roles := m.kubeconfig[name]
		doc := fmt.Sprintf("kind: Kubeconfig\nmetadata:\n  name: %s\nspec:\n  issuer: %s\n  username: %s\n  target:\n    server: https://api.example.com:6443\n    ca: %s\n  secret:\n    cluster: %s\n",
			name, issuer, name, issuer, m.cluster)
		if len(roles) > 0 {
			doc += fmt.Sprintf("  authorization:\n    clusterRoleBindings:\n      cluster: %s\n      clusterRoles: [%s]\n", m.cluster, strings.Join(roles, ", "))
		}
		docs = append(docs, doc)
	}
	if len(m.bundle) > 0 {
		doc := "kind: TrustBundle\nmetadata:\n  name: prop-bundle\nspec:\n  sources:\n"
		for _, s := range m.bundle {
			switch {
			case s == "file":
				doc += "    - file: prop/bundle.pem\n"
			case s == "ca:prop-ca" && !m.extraCA:
				doc += "    - ca: " + m.exampleCA + "\n"
			default:
				doc += "    - ca: " + strings.TrimPrefix(s, "ca:") + "\n"
			}
		}
		doc += fmt.Sprintf("  configMap:\n    cluster: %s\n    namespace: apps\n", m.cluster)
		docs = append(docs, doc)
	}
	for i := range docs {
		docs[i] = "apiVersion: gitca.dev/v1alpha1\n" + docs[i]
	}
	return strings.Join(docs, "---\n")
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// edit changes the model at random: one kind of topology edit a user makes.
func (m *propertyModel) edit(rnd *mrand.Rand, pool []string) string {
	switch rnd.IntN(11) {
	case 0:
		name := fmt.Sprintf("prop-web-%d", rnd.IntN(4))
		if _, ok := m.certs[name]; ok {
			delete(m.certs, name)
			return "remove certificate " + name
		}
		m.certs[name] = &propCert{issuer: []string{"prop-ca", m.exampleCA}[rnd.IntN(2)], sans: []string{name + ".example.com"}, secret: name}
		return "add certificate " + name
	case 1:
		names := sortedNames(m.certs)
		if len(names) == 0 {
			return "no certificate to change"
		}
		name := names[rnd.IntN(len(names))]
		c := m.certs[name]
		if rnd.IntN(2) == 0 || len(c.sans) > 3 {
			c.sans = c.sans[:1]
		} else {
			c.sans = append(c.sans, fmt.Sprintf("san%d.example.com", rnd.IntN(100)))
		}
		return "change the SANs of " + name
	case 2:
		names := sortedNames(m.certs)
		if len(names) == 0 {
			return "nothing to rename"
		}
		// A rename that keeps the Secret's name.
		name := names[rnd.IntN(len(names))]
		c := m.certs[name]
		delete(m.certs, name)
		m.certs[name+"-r"] = c
		return "rename " + name
	case 3:
		name := fmt.Sprintf("prop-kc-%d", rnd.IntN(3))
		roles := [][]string{nil, {"view"}, {"cluster-admin"}, {"view", "edit"}}[rnd.IntN(4)]
		if _, ok := m.kubeconfig[name]; ok && rnd.IntN(3) == 0 {
			delete(m.kubeconfig, name)
			return "remove kubeconfig " + name
		}
		m.kubeconfig[name] = roles
		return fmt.Sprintf("kubeconfig %s roles %v", name, roles)
	case 4:
		all := []string{"ca:prop-ca", "ca:" + m.exampleCA, "file"}
		var b []string
		for _, s := range all {
			if rnd.IntN(2) == 0 {
				b = append(b, s)
			}
		}
		m.bundle = b
		return fmt.Sprintf("bundle sources %v", b)
	case 5:
		m.pemCerts = rnd.IntN(3)
		return fmt.Sprintf("bundle file holds %d certificates", m.pemCerts)
	case 6:
		switch rnd.IntN(3) {
		case 0:
			m.recipients = nil
		case 1:
			m.recipients = pool[:1]
		default:
			m.recipients = pool[1:]
		}
		return fmt.Sprintf("cluster recipients %d", len(m.recipients))
	case 7:
		if m.path == "" {
			m.path = "overlays/" + m.cluster
		} else {
			m.path = ""
		}
		return "cluster path " + cmpOr(m.path, "(default)")
	case 8:
		m.ksops = !m.ksops
		return fmt.Sprintf("flavour ksops=%v", m.ksops)
	case 9:
		m.extraCA = !m.extraCA
		return fmt.Sprintf("extra CA %v", m.extraCA)
	default:
		if rnd.IntN(2) == 0 {
			m.sanEdit = !m.sanEdit
			return "edit the example's own files"
		}
		m.days += rnd.IntN(200)
		return fmt.Sprintf("time passes: day %d", m.days)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// write puts the model into the topology directory.
func (m *propertyModel) write(t *testing.T, dir string, pem []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(m.config()), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte(m.extra()), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "prop"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prop", "bundle.pem"), pem, 0o644))
	switch m.example {
	case "kubeadm":
		rewrite(t, filepath.Join(dir, "kubeadm.yaml"), "      - api.demo.example.com\n", "      - api.demo.example.com\n      - api2.demo.example.com\n", m.sanEdit)
	case "kcp":
		rewrite(t, filepath.Join(dir, "kcp.yaml"), "        hostname: alpha-1.kcp.example.com\n", "        hostname: alpha-1b.kcp.example.com\n", m.sanEdit)
	}
}

// rewrite replaces old with new in a file when on, and back when not.
func rewrite(t *testing.T, file, old, new string, on bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	s := strings.Replace(string(b), new, old, 1)
	if on {
		s = strings.Replace(s, old, new, 1)
	}
	require.NoError(t, os.WriteFile(file, []byte(s), 0o644))
}

// TestPlanIsTheWholeTruth is the plan's contract, over random sequences of
// topology edits on both examples: after each edit, the plan has changes
// exactly when a render writes something, names every path the render
// writes or deletes with that action (and nothing else), and a render
// followed by a plan has nothing left to do. GITCA_PROPERTY_SEED replays a
// failure; GITCA_PROPERTY_SEQUENCES sets how many sequences run.
func TestPlanIsTheWholeTruth(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GITCA_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	sequences := 300
	if testing.Short() || raceEnabled {
		sequences = 20
	}
	if s := os.Getenv("GITCA_PROPERTY_SEQUENCES"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err)
		sequences = v
	}
	t.Logf("seed %d (GITCA_PROPERTY_SEED=%d replays it), %d sequences", seed, seed, sequences)
	rnd := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	id, recipient, err := secrets.GenerateAgeKey(t0)
	require.NoError(t, err)
	ids, err := secrets.ParseIdentities(strings.NewReader(string(id)))
	require.NoError(t, err)
	var pool []string
	for range 3 {
		_, r, err := secrets.GenerateAgeKey(t0)
		require.NoError(t, err)
		pool = append(pool, r)
	}
	// PEM certificates the bundle file can hold.
	var pems [][]byte
	for i := range 2 {
		pems = append(pems, sign.EncodeCertsPEM(testpki.Root(t, fmt.Sprintf("partner %d", i), testpki.Key(t), t0, t0.AddDate(5, 0, 0))))
	}

	bases := []*propertyModel{
		{example: "kubeadm", cluster: "demo", namespace: "kube-system", exampleCA: "demo-ca"},
		{example: "kcp", cluster: "kcp-prod", namespace: "kcp", exampleCA: "kcp-pki-ca"},
	}
	for i := range sequences {
		base := *bases[i%len(bases)]
		m := &base
		m.certs, m.kubeconfig = map[string]*propCert{}, map[string][]string{}
		dir := t.TempDir()
		topo, st := filepath.Join(dir, "topology"), filepath.Join(dir, "state")
		require.NoError(t, os.CopyFS(topo, os.DirFS(filepath.Join("..", "examples", m.example))))
		var log []string
		step := func(what string) {
			t.Helper()
			log = append(log, what)
			pem := slices.Concat(pems[:m.pemCerts]...)
			if len(pem) == 0 {
				pem = pems[1] // a bundle file must hold a certificate
			}
			m.write(t, topo, pem)
			checkPlanAgainstRender(t, topo, st, t0.AddDate(0, 0, m.days), recipient, &ids,
				fmt.Sprintf("seed %d, sequence %d (%s): %s", seed, i, m.example, strings.Join(log, " → ")))
		}
		step("initial render")
		for range 1 + rnd.IntN(3) {
			step(m.edit(rnd, pool))
		}
		if t.Failed() {
			return
		}
	}
}

// checkPlanAgainstRender plans, renders, writes and plans again.
func checkPlanAgainstRender(t *testing.T, topoDir, stateDir string, now time.Time, recipient string, ids *secrets.Identities, where string) {
	t.Helper()
	top, err := topology.Load(topoDir)
	require.NoError(t, err, where)
	opt := Options{Options: plan.Options{Now: now, Recipients: plan.ResolveRecipients(top, []string{recipient}), AllowDestroy: true}}
	st, err := plan.ReadState(stateDir)
	require.NoError(t, err, where)
	p, err := Plan(context.Background(), top, st, opt, ids)
	require.NoError(t, err, where)

	st, err = plan.ReadState(stateDir)
	require.NoError(t, err, where)
	res, err := Render(context.Background(), top, st, opt, ids, rand.Reader)
	require.NoError(t, err, where)
	planned := map[string]plan.FileAction{}
	for _, f := range p.Files {
		planned[f.Path] = f.Action
	}
	rendered := map[string]plan.FileAction{}
	for path := range res.Tree.Write {
		rendered[path] = plan.FileUpdate
		if !st.Has(path) {
			rendered[path] = plan.FileCreate
		}
	}
	for _, path := range res.Tree.Delete {
		rendered[path] = plan.FileDelete
	}
	require.Equal(t, planned, rendered, "%s: the plan and the render disagree on the files", where)
	if !p.Changes() {
		// Render takes the plan's word for "nothing to do"; apply and emit
		// in full must agree.
		ap := &apply.Applier{Plan: p, State: st, Identities: ids, Rand: rand.Reader}
		out, err := ap.Apply(context.Background())
		require.NoError(t, err, where)
		tree, err := emit.Emit(p, st, out)
		require.NoError(t, err, where)
		require.True(t, tree.Empty(), "%s: the plan has nothing to do, a full emit writes %v", where, tree.Paths())
	}
	require.Equal(t, p.Changes(), !res.Tree.Empty(), where)
	require.NoError(t, emit.Write(stateDir, res.Tree), where)

	st, err = plan.ReadState(stateDir)
	require.NoError(t, err, where)
	again, err := Plan(context.Background(), top, st, opt, ids)
	require.NoError(t, err, where)
	require.False(t, again.Changes(), "%s: a render followed by a plan is not a no-op:\n%s", where, strings.Join(again.Lines(), "\n"))
}
