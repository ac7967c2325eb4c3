package e2e

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// fluxStateSource is the GitRepository the user creates for the state repo.
// The topology names it through the Config annotation gitca reads today
// (gitca.dev/flux-source); issue 12 replaces that with a typed
// spec.clusters[].flux.source, and this is the one place to change then.
const fluxStateSource = "gitca-state"

// fluxConfig is examples/kubeadm's Config with the state repository as the
// cluster's Flux fetches it (gitca then writes the GitRepository), and the
// cluster's own age key (the one Flux decrypts with) as the README tells: it
// opens the overlay, never ca/.
func fluxConfig(clusterRecipient, stateURL string) string {
	return `apiVersion: gitca.dev/v1alpha1
kind: Config
metadata:
  name: gitca
spec:
  stateRepository:
    url: ` + stateURL + `
  defaults:
    keyAlgorithm: ECDSA-P256
  clusters:
    - name: demo
      flavour: flux
      namespace: kube-system
      recipients:
        - ` + clusterRecipient + `
`
}

// fluxApps puts a Secret and a trust-bundle ConfigMap into the namespace apps,
// which nothing creates beforehand: a team's namespace on a fresh cluster.
const fluxApps = `apiVersion: gitca.dev/v1alpha1
kind: Certificate
metadata:
  name: demo-web
spec:
  issuer: demo-ca
  profile: server
  dnsNames: [web.apps.svc, web.apps.svc.cluster.local]
  secret:
    cluster: demo
    namespace: apps
---
apiVersion: gitca.dev/v1alpha1
kind: TrustBundle
metadata:
  name: demo-roots
spec:
  sources:
    - ca: demo-ca
    - ca: demo-front-proxy-ca
  configMap:
    cluster: demo
    namespace: apps
`

// fluxViewer is the Kubeconfig the test later removes from the topology:
// its Secret and its ClusterRoleBinding must then be pruned from the cluster.
const fluxViewer = `apiVersion: gitca.dev/v1alpha1
kind: Kubeconfig
metadata:
  name: e2e-flux-viewer
spec:
  issuer: demo-ca
  username: e2e-flux-viewer
  groups: [e2e-readers]
  target:
    server: https://127.0.0.1:6443
    ca: demo-ca
  secret:
    cluster: demo
  authorization:
    clusterRoleBindings:
      cluster: demo
      clusterRoles: [view]
`

// TestFluxDeliversTheStateRepo is the GitOps loop with real parts: gitca
// reconcile commits the state into a bare repository, git http-backend
// serves it on loopback, the real source-controller and kustomize-controller
// sync it into the real kube-apiserver booted from the same state, and the
// only thing the user adds by hand is the sops-age Secret; what gitca wrote
// under flux/<cluster>/ (the state repo's GitRepository and the Flux
// Kustomization) is applied as it is, with kubectl apply -k.
func TestFluxDeliversTheStateRepo(t *testing.T) {
	RequireE2E(t)
	bins := RequireBinaries(t)
	fbins := RequireFluxBinaries(t)
	began := time.Now()
	t.Cleanup(func() { t.Logf("wall time %s", time.Since(began).Round(time.Second)) })
	root := RepoRoot(t)
	dir := t.TempDir()

	gitca, err := BuildGitca(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	// Two identities, as in production: the reconciler's (opens everything,
	// signs) and the cluster's, which Flux holds.
	ageKey := filepath.Join(dir, "age.key")
	if _, err := gitcaRun(root, gitca, nil, "keygen", "--out", ageKey); err != nil {
		t.Fatal(err)
	}
	fluxKey := filepath.Join(dir, "flux.agekey")
	out, err := gitcaRun(root, gitca, nil, "keygen", "--out", fluxKey)
	if err != nil {
		t.Fatal(err)
	}
	fluxRecipient := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "age1") {
			fluxRecipient = f
		}
	}
	if fluxRecipient == "" {
		t.Fatalf("gitca keygen printed no age recipient: %q", out)
	}

	// The state repo's server first: the topology names its URL.
	gitRoot := filepath.Join(dir, "git")
	if err := os.MkdirAll(gitRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	gitServer := StartGitServer(t, gitRoot)
	stateURL := gitServer.RepoURL("state.git")

	// The topology repo: examples/kubeadm plus the objects above.
	topo := filepath.Join(dir, "topology")
	if err := os.CopyFS(topo, os.DirFS(filepath.Join(root, ExampleTopology))); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"config.yaml": fluxConfig(fluxRecipient, stateURL), "apps.yaml": fluxApps, "e2e-flux-viewer.yaml": fluxViewer} {
		if err := os.WriteFile(filepath.Join(topo, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustGit(t, topo, "init", "-q", "-b", "main")
	mustGit(t, topo, "add", "-A")
	mustGit(t, topo, "commit", "-q", "-m", "examples/kubeadm with apps and a viewer")

	// The state repo: a bare repository gitca pushes to and Flux pulls from.
	bare := filepath.Join(gitRoot, "state.git")
	mustGit(t, dir, "init", "-q", "--bare", "-b", "main", bare)
	reconcile := func(now string) string {
		t.Helper()
		args := []string{"reconcile", "--topology", topo + "#main", "--state", "file://" + bare + "#main",
			"--cache-dir", filepath.Join(dir, "cache")}
		if now != "" {
			args = append(args, "--now", now)
		}
		if _, err := gitcaRun(root, gitca, []string{"SOPS_AGE_KEY_FILE=" + ageKey}, args...); err != nil {
			t.Fatal(err)
		}
		return mustGit(t, bare, "rev-parse", "main")
	}
	// What the user reads the state through: a clone kept up to date.
	state := filepath.Join(dir, "state")
	pull := func() {
		t.Helper()
		mustGit(t, state, "pull", "-q", "--ff-only")
	}

	head := reconcile("")
	mustGit(t, dir, "clone", "-q", bare, state)

	// The cluster, booted from the same state.
	cp0 := filepath.Join(dir, "cp-0")
	if _, err := gitcaRun(root, gitca, []string{"SOPS_AGE_KEY_FILE=" + ageKey},
		"export", "kubeadm", "--state", state, "--node", "cp-0", "--out", cp0); err != nil {
		t.Fatal(err)
	}
	etcd := StartEtcd(t, bins, EtcdConfig{Name: "cp-0", PKIDir: filepath.Join(cp0, "pki"), IP: NodeIP["cp-0"]})
	api := StartAPIServer(t, bins, APIServerConfig{Dir: cp0, IP: NodeIP["cp-0"], EtcdServers: []string{etcd.ClientURL}})
	admin := filepath.Join(cp0, "super-admin.conf")
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := api.Kubectl(admin, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	flux := StartFlux(t, api, admin, fbins)

	// The user's one-time steps, as the README has them.
	kubectl("create", "secret", "generic", "sops-age", "--namespace="+FluxNamespace, "--from-file=age.agekey="+fluxKey)
	fluxDir := filepath.Join(state, "flux", ExampleCluster)
	kubectl("apply", "-k", fluxDir)
	ks := fluxKustomization(t, fluxDir)
	ksName := ks.Metadata.Name
	ksNS := cmpOr(ks.Metadata.Namespace, FluxNamespace)
	const ksResource = "kustomization.kustomize.toolkit.fluxcd.io"
	const gitResource = "gitrepository.source.toolkit.fluxcd.io"

	// waitApplied pushes nothing; it makes Flux fetch now (flux reconcile
	// source git) and waits until the Kustomization has applied revision.
	waitApplied := func(t *testing.T, sha string, timeout time.Duration) {
		t.Helper()
		revision := "main@sha1:" + sha
		if _, err := RequestReconcile(api, admin, gitResource, FluxNamespace, fluxStateSource); err != nil {
			t.Fatal(err)
		}
		if _, err := WaitFluxRevision(api, admin, flux, gitResource, FluxNamespace, fluxStateSource, revision, timeout); err != nil {
			t.Fatalf("the state repo's GitRepository: %v", err)
		}
		if _, err := WaitFluxRevision(api, admin, flux, ksResource, ksNS, ksName, revision, timeout); err != nil {
			t.Fatalf("gitca's Kustomization: %v", err)
		}
	}

	t.Run("gitca's Kustomization retries, waits, prunes and decrypts", func(t *testing.T) {
		spec := ks.Spec
		src, _ := spec["sourceRef"].(map[string]any)
		if src["kind"] != "GitRepository" || src["name"] != fluxStateSource || cmpOr(str(src["namespace"]), ksNS) != FluxNamespace {
			t.Errorf("sourceRef %v: want the state repo's GitRepository %s/%s", src, FluxNamespace, fluxStateSource)
		}
		dec, _ := spec["decryption"].(map[string]any)
		ref, _ := dec["secretRef"].(map[string]any)
		if dec["provider"] != "sops" || ref["name"] != "sops-age" {
			t.Errorf("decryption %v: want provider sops with secretRef sops-age", dec)
		}
		if spec["prune"] != true {
			t.Errorf("prune %v: want true, or a Kubeconfig removed from the topology stays in the cluster", spec["prune"])
		}
		if spec["wait"] != true {
			t.Errorf("wait %v: want true, so Ready means every object is in place", spec["wait"])
		}
		// Without a retryInterval a failed apply waits the full interval (10m).
		for _, f := range []string{"interval", "retryInterval", "timeout"} {
			if str(spec[f]) == "" {
				t.Errorf("spec.%s is not set", f)
			}
		}
	})

	before := overlayObjects(t, state, ks)
	if !t.Run("every object of the overlay reaches the cluster, decrypted", func(t *testing.T) {
		waitApplied(t, head, 3*time.Minute)
		checkDelivered(t, before, clusterObjects(t, api, admin, ksName, ksNS, before))
	}) {
		t.Fatal("nothing was delivered: the renewal and prune steps need a first delivery")
	}

	later := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	var renewed objects
	t.Run("a renewal a year later reaches the cluster", func(t *testing.T) {
		sha := reconcile(later)
		if sha == head {
			t.Fatal("gitca reconcile a year later committed nothing")
		}
		head = sha
		pull()
		renewed = overlayObjects(t, state, ks)
		var changed []string
		for k, o := range renewed {
			if old, ok := before[k]; ok && o.Kind == "Secret" && o.plain["tls.crt"] != old.plain["tls.crt"] {
				changed = append(changed, o.Annotations["gitca.dev/object"])
			}
		}
		if !slices.Contains(changed, "Certificate/demo-web") {
			t.Fatalf("renewed certificates %v: want Certificate/demo-web among them", changed)
		}
		waitApplied(t, head, 2*time.Minute)
		checkDelivered(t, renewed, clusterObjects(t, api, admin, ksName, ksNS, renewed))
	})

	t.Run("removing a Kubeconfig prunes its Secret and binding", func(t *testing.T) {
		if renewed == nil {
			pull()
			renewed = overlayObjects(t, state, ks)
		}
		mustGit(t, topo, "rm", "-q", "e2e-flux-viewer.yaml")
		mustGit(t, topo, "commit", "-q", "-m", "remove the viewer")
		head = reconcile(later)
		pull()
		after := overlayObjects(t, state, ks)
		var gone []string
		for k, o := range renewed {
			if _, ok := after[k]; !ok {
				if o.Annotations["gitca.dev/object"] != "Kubeconfig/e2e-flux-viewer" {
					t.Errorf("%s left the overlay with the viewer, but belongs to %s", k, o.Annotations["gitca.dev/object"])
				}
				gone = append(gone, o.Kind)
			}
		}
		slices.Sort(gone)
		if !reflect.DeepEqual(gone, []string{"ClusterRoleBinding", "Secret"}) {
			t.Fatalf("removing the viewer took %v out of the overlay, want its ClusterRoleBinding and Secret", gone)
		}
		waitApplied(t, head, 2*time.Minute)
		// checkDelivered also fails on any object Flux still holds that the
		// overlay no longer has.
		checkDelivered(t, after, clusterObjects(t, api, admin, ksName, ksNS, renewed))
		for k, o := range renewed {
			if _, ok := after[k]; ok {
				continue
			}
			args := []string{"get", o.resource(), o.Name, "--ignore-not-found", "-o", "name"}
			if o.Namespace != "" {
				args = append(args, "--namespace="+o.Namespace)
			}
			if out := kubectl(args...); strings.TrimSpace(out) != "" {
				t.Errorf("%s is still in the cluster after the viewer was removed", k)
			}
		}
	})
}

func mustGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := Git(dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// fluxKustomization is the one Flux Kustomization among the files gitca wrote
// in flux/<cluster>/.
func fluxKustomization(t testing.TB, dir string) *FluxObject {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var found []*FluxObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc["kind"] != "Kustomization" || !strings.HasPrefix(str(doc["apiVersion"]), "kustomize.toolkit.fluxcd.io/") {
				continue
			}
			j, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var o FluxObject
			if err := json.Unmarshal(j, &o); err != nil {
				t.Fatal(err)
			}
			found = append(found, &o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: want one Flux Kustomization, found %d in %v", dir, len(found), files)
	}
	return found[0]
}

// object is one object of the overlay or of the cluster; for Secrets and
// ConfigMaps plain holds the readable values and sealed the names of those
// SOPS encrypted (their value in the cluster, where it has one).
type object struct {
	APIVersion, Kind, Namespace, Name string
	Annotations                       map[string]string
	Type                              string
	plain                             map[string]string
	sealed                            []string
	rest                              map[string]any // roleRef, subjects, ...
}

// objects are keyed by group/Kind/namespace/name.
type objects map[string]*object

func (o *object) group() string {
	g, _, ok := strings.Cut(o.APIVersion, "/")
	if !ok {
		return ""
	}
	return g
}

func (o *object) key() string {
	return o.group() + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name
}

// resource names the object's kind for kubectl (secret, clusterrolebinding.rbac.authorization.k8s.io).
func (o *object) resource() string {
	r := strings.ToLower(o.Kind)
	if g := o.group(); g != "" {
		r += "." + g
	}
	return r
}

func parseObject(m map[string]any) *object {
	meta, _ := m["metadata"].(map[string]any)
	o := &object{
		APIVersion:  str(m["apiVersion"]),
		Kind:        str(m["kind"]),
		Namespace:   str(meta["namespace"]),
		Name:        str(meta["name"]),
		Annotations: map[string]string{},
		Type:        str(m["type"]),
		plain:       map[string]string{},
		rest:        map[string]any{},
	}
	ann, _ := meta["annotations"].(map[string]any)
	for k, v := range ann {
		o.Annotations[k] = str(v)
	}
	add := func(k, v string) {
		if strings.HasPrefix(v, "ENC[") {
			o.sealed = append(o.sealed, k)
		} else {
			o.plain[k] = v
		}
	}
	data, _ := m["data"].(map[string]any)
	for k, v := range data {
		if o.Kind == "Secret" {
			s := str(v)
			if b, err := base64.StdEncoding.DecodeString(s); err == nil {
				s = string(b)
			}
			add(k, s)
		} else {
			add(k, str(v))
		}
	}
	sd, _ := m["stringData"].(map[string]any)
	for k, v := range sd {
		add(k, str(v))
	}
	slices.Sort(o.sealed)
	for _, f := range []string{"roleRef", "subjects", "rules"} {
		if v, ok := m[f]; ok {
			o.rest[f] = v
		}
	}
	return o
}

// overlayObjects builds the overlay a Flux Kustomization points at, as
// kustomize-controller does before it decrypts: what must reach the cluster.
func overlayObjects(t testing.TB, stateDir string, ks *FluxObject) objects {
	t.Helper()
	dir := filepath.Join(stateDir, filepath.FromSlash(str(ks.Spec["path"])))
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	objs := objects{}
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		o := parseObject(m)
		objs[o.key()] = o
	}
	if len(objs) == 0 {
		t.Fatalf("the overlay %s is empty", dir)
	}
	return objs
}

// clusterObjects lists what the Kustomization manages in the cluster (Flux
// labels every object it applies), of every kind the overlay has.
func clusterObjects(t testing.TB, api *APIServer, admin, ksName, ksNS string, kinds objects) objects {
	t.Helper()
	var rs []string
	for _, o := range kinds {
		if !slices.Contains(rs, o.resource()) {
			rs = append(rs, o.resource())
		}
	}
	slices.Sort(rs)
	out, err := api.Kubectl(admin, "get", strings.Join(rs, ","), "--all-namespaces", "-o", "json",
		"-l", "kustomize.toolkit.fluxcd.io/name="+ksName+",kustomize.toolkit.fluxcd.io/namespace="+ksNS)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	objs := objects{}
	for _, m := range list.Items {
		o := parseObject(m)
		objs[o.key()] = o
	}
	return objs
}

// checkDelivered compares the cluster with the overlay: the same objects;
// readable values byte for byte; sealed values decrypted, a private key that
// matches its certificate (or tls.pub), a kubeconfig whose client certificate
// and key belong together.
func checkDelivered(t testing.TB, want, got objects) {
	t.Helper()
	kinds, sealed := map[string]int{}, 0
	defer func() {
		if !t.Failed() {
			t.Logf("the cluster matches the overlay: %v, %d sealed values decrypted and checked", kinds, sealed)
		}
	}()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		w, g := want[k], got[k]
		kinds[w.Kind]++
		if g == nil {
			t.Errorf("%s: not in the cluster", k)
			continue
		}
		if w.Type != g.Type {
			t.Errorf("%s: type %q, want %q", k, g.Type, w.Type)
		}
		for f, v := range w.rest {
			if !reflect.DeepEqual(g.rest[f], v) {
				t.Errorf("%s: %s %v, want %v", k, f, g.rest[f], v)
			}
		}
		if w.Kind != "Secret" && w.Kind != "ConfigMap" {
			continue
		}
		wk := slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(w.plain)), w.sealed...)))
		if gk := slices.Sorted(maps.Keys(g.plain)); !reflect.DeepEqual(wk, gk) {
			t.Errorf("%s: keys %v in the cluster, want %v", k, gk, wk)
		}
		for f, v := range w.plain {
			if g.plain[f] != v {
				t.Errorf("%s: %s differs from the state repo", k, f)
			}
		}
		if len(g.sealed) > 0 {
			t.Errorf("%s: %v still SOPS-encrypted in the cluster", k, g.sealed)
		}
		for _, f := range w.sealed {
			if err := checkSealedValue(f, g.plain); err != nil {
				t.Errorf("%s: %s: %v", k, f, err)
			}
			sealed++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if want[k] == nil {
			t.Errorf("%s: in the cluster but no longer in the overlay (not pruned)", k)
		}
	}
}

// checkSealedValue checks a decrypted value against its readable neighbours.
func checkSealedValue(name string, values map[string]string) error {
	v, ok := values[name]
	if !ok || v == "" {
		return errors.New("missing or empty")
	}
	switch {
	case name == "kubeconfig":
		cfg, err := clientcmd.Load([]byte(v))
		if err != nil {
			return err
		}
		n := 0
		for user, a := range cfg.AuthInfos {
			if len(a.ClientCertificateData) == 0 {
				continue
			}
			if _, err := tls.X509KeyPair(a.ClientCertificateData, a.ClientKeyData); err != nil {
				return fmt.Errorf("user %s: %w", user, err)
			}
			// The Secret shows the kubeconfig's certificate as tls.crt for
			// review; the two must be the same certificate.
			if crt, ok := values["tls.crt"]; ok && !samePEMCert(crt, string(a.ClientCertificateData)) {
				return fmt.Errorf("user %s: client certificate is not the Secret's tls.crt", user)
			}
			n++
		}
		if n == 0 {
			return errors.New("no user with a client certificate")
		}
		return nil
	case strings.HasSuffix(name, ".key"):
		key, err := parsePrivateKey(v)
		if err != nil {
			return err
		}
		pub := key.(interface{ Public() crypto.PublicKey }).Public()
		var want crypto.PublicKey
		if c, ok := values[strings.TrimSuffix(name, ".key")+".crt"]; ok {
			cert, err := parseCert(c)
			if err != nil {
				return err
			}
			want = cert.PublicKey
		} else if p, ok := values[strings.TrimSuffix(name, ".key")+".pub"]; ok {
			blk, _ := pem.Decode([]byte(p))
			if blk == nil {
				return errors.New("its .pub is not PEM")
			}
			if want, err = x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
				return err
			}
		} else {
			return errors.New("no certificate or public key beside it")
		}
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(want) {
			return errors.New("does not match its certificate or public key")
		}
		return nil
	}
	return nil
}

func parsePrivateKey(s string) (crypto.Signer, error) {
	blk, rest := pem.Decode([]byte(s))
	if blk == nil {
		return nil, errors.New("not PEM")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

func parseCert(s string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// samePEMCert reports whether a and b start with the same certificate.
func samePEMCert(a, b string) bool {
	ca, err := parseCert(a)
	if err != nil {
		return false
	}
	cb, err := parseCert(b)
	return err == nil && ca.Equal(cb)
}
