package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/gitca-dev/gitca/secrets"
)

// hostileState is a rendered state tree, a sentinel directory outside it
// that links may point to, and the identity that opens its records.
type hostileState struct {
	t                 *testing.T
	dir, outside      string
	ids               secrets.Identities
	recipient         string
	pemKey, ageSecret string // plain secrets to plant
}

func (h *hostileState) path(p string) string { return filepath.Join(h.dir, filepath.FromSlash(p)) }

func (h *hostileState) read(p string) []byte {
	b, err := os.ReadFile(h.path(p))
	require.NoError(h.t, err)
	return b
}

func (h *hostileState) write(p string, b []byte) {
	require.NoError(h.t, os.MkdirAll(filepath.Dir(h.path(p)), 0o755))
	require.NoError(h.t, os.WriteFile(h.path(p), b, 0o644))
}

func (h *hostileState) replace(p, old, new string) {
	b := h.read(p)
	require.Contains(h.t, string(b), old, p)
	h.write(p, bytes.Replace(b, []byte(old), []byte(new), 1))
}

// link replaces p with a symbolic link; target "OUT/x" points into the sentinel.
func (h *hostileState) link(p, target string) {
	require.NoError(h.t, os.RemoveAll(h.path(p)))
	require.NoError(h.t, os.MkdirAll(filepath.Dir(h.path(p)), 0o755))
	require.NoError(h.t, os.Symlink(strings.ReplaceAll(target, "OUT", h.outside), h.path(p)))
}

// reseal opens a record, lets edit change its manifest, and seals it again
// to recipients (the record's own when nil): a valid MAC, whatever it holds.
func (h *hostileState) reseal(p string, recipients []string, edit func(m map[string]any)) {
	plain, err := secrets.Open(h.read(p), h.ids)
	require.NoError(h.t, err)
	var m map[string]any
	require.NoError(h.t, yaml.Unmarshal(plain, &m))
	edit(m)
	out, err := yaml.Marshal(m)
	require.NoError(h.t, err)
	if recipients == nil {
		recipients = []string{h.recipient}
	}
	sealed, err := secrets.Seal(out, recipients, t0)
	require.NoError(h.t, err)
	h.write(p, sealed)
}

func (h *hostileState) editIndex(from, to string) { h.replace(".gitca/index.json", from, to) }

func sparse(t *testing.T, p string, size int64) {
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
}

// listAll is every entry below dir with its content (links as their target).
func listAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[p] = "-> " + target
			return err
		case d.IsDir():
			out[p+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	}))
	return out
}

// TestHostileStateTrees: every kind of hostile or careless state tree (links
// of every kind, traversal names, lies in the index, swapped records, huge
// and deep YAML, plain keys, unknown values, foreign recipients, unreadable
// CA records) ends in a named repair that the next plan finds converged, or
// in exit 1 with a message naming the file; never a stack trace, never a
// write outside the tree, never more than 5 s for a command.
func TestHostileStateTrees(t *testing.T) {
	if testing.Short() {
		t.Skip("runs some hundred gitca processes")
	}
	e := newEnv(t)
	e.usePlainBinary(t)
	key, err := os.ReadFile(e.keyFile)
	require.NoError(t, err)
	ids, err := secrets.ParseIdentities(bytes.NewReader(key))
	require.NoError(t, err)
	recipient := ids.Recipients()[0]
	e.vars = append(e.vars, "SOPS_AGE_RECIPIENTS="+recipient)
	topo := filepath.Join("..", "..", "render", "testdata", "basic")
	base := filepath.Join(t.TempDir(), "state")
	e.mustRun(t, "render", "--topology", topo, "--state", base, "--now", rfc3339(t0))

	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	foreign, foreignRecipient, err := secrets.GenerateAgeKey(t0)
	require.NoError(t, err)
	ageSecret := strings.TrimSpace(string(foreign[bytes.Index(foreign, []byte("AGE-SECRET-KEY-")):]))

	const web, dbPeer, issuing, root = "clusters/prod/pki/secret-web.yaml", "clusters/prod/pki/secret-db-peer.yaml", "ca/issuing.yaml", "ca/root.yaml"
	deep := "apiVersion: v1\nkind: Secret\nmetadata:\n  annotations: {gitca.dev/object: Certificate/web, gitca.dev/role: primary}\nx: " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + "\n"
	bomb := "metadata:\n  annotations:\n    gitca.dev/object: Certificate/web\n    gitca.dev/role: primary\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	selfMerge := "metadata:\n  annotations:\n    gitca.dev/object: Certificate/web\n    gitca.dev/role: primary\nd: &d\n  <<: *d\n"
	var manyKeys strings.Builder
	for i := range 40000 {
		fmt.Fprintf(&manyKeys, "    k%05d: v\n", i)
	}
	var bigKustomization strings.Builder
	bigKustomization.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n")
	for i := range 30000 {
		fmt.Fprintf(&bigKustomization, "  - pki/secret-%05d.yaml\n", i)
	}

	type outcome struct {
		err    string    // a regexp the error must match; it names the file
		repair string    // what the render's plan must say
		at     time.Time // the run's time; zero: an hour after the render
	}
	cases := []struct {
		name   string
		mutate func(h *hostileState)
		want   outcome
	}{
		// Links of every kind.
		{"namespace dir links out", func(h *hostileState) { h.link("clusters/prod/pki", "OUT") }, outcome{err: `clusters/prod/pki is a symbolic link to "[^"]*outside"`}},
		{"ca dir links out", func(h *hostileState) { h.link("ca", "OUT") }, outcome{err: `ca is a symbolic link to`}},
		{".gitca links out", func(h *hostileState) { h.link(".gitca", "OUT") }, outcome{err: `\.gitca is a symbolic link to`}},
		{"index links out", func(h *hostileState) { h.link(".gitca/index.json", "OUT/victim") }, outcome{err: `\.gitca/index\.json is a symbolic link to`}},
		{"record links to another record", func(h *hostileState) { h.link(web, "secret-db-peer.yaml") }, outcome{err: `secret-web\.yaml is a symbolic link to "secret-db-peer\.yaml"`}},
		{"overlay links to ca/", func(h *hostileState) { h.link("clusters/prod", "../ca") }, outcome{err: `clusters/prod is a symbolic link to "\.\./ca"`}},
		{"dangling link", func(h *hostileState) { h.link("README.md", "nowhere") }, outcome{err: `README\.md is a symbolic link to "nowhere"`}},
		{"link to /etc/passwd", func(h *hostileState) { h.link("clusters/prod/pki/passwd.yaml", "/etc/passwd") }, outcome{err: `passwd\.yaml is a symbolic link to "/etc/passwd"`}},
		{"FIFO", func(h *hostileState) {
			require.NoError(h.t, syscall.Mkfifo(h.path("clusters/prod/pki/fifo.yaml"), 0o644))
		}, outcome{err: `fifo\.yaml is not a regular file`}},
		// Traversal names.
		{"index entry outside the tree", func(h *hostileState) { h.editIndex(`"path":"`+web, `"path":"../../outside/victim`) }, outcome{repair: "index"}},
		{"Secret named like a path", func(h *hostileState) {
			h.reseal(web, nil, func(m map[string]any) { m["metadata"].(map[string]any)["name"] = "../../../etc/x" })
		}, outcome{repair: "damaged (it is Secret pki/../../../etc/x, not pki/web"}},
		{"object ID with a traversal", func(h *hostileState) {
			h.write("clusters/prod/pki/secret-x.yaml", bytes.Replace(h.read(web), []byte("Certificate/web"), []byte("Certificate/../../web"), 1))
		}, outcome{repair: "clusters/prod/pki/secret-x.yaml"}},
		{"a stray file with a trailing space", func(h *hostileState) { h.write(web+" ", h.read(web)) }, outcome{repair: "orphaned"}},
		// Lies in the index.
		// web lives 90 days from t0 and renews 15 days before its end: were the
		// lie believed, it would not be renewed on day 80.
		{"index: later not-after", func(h *hostileState) {
			re := regexp.MustCompile(`("path":"` + web + `".*"notAfter":")2027`)
			b := h.read(".gitca/index.json")
			require.True(h.t, re.Match(b))
			h.write(".gitca/index.json", re.ReplaceAll(b, []byte("${1}2099")))
		}, outcome{repair: "renewal-window", at: t0.Add(80 * 24 * time.Hour)}},
		{"index: another ID", func(h *hostileState) { h.editIndex(`"id":"Certificate/web"`, `"id":"Certificate/client"`) }, outcome{repair: "index"}},
		{"index: garbage", func(h *hostileState) { h.write(".gitca/index.json", []byte("{not json")) }, outcome{repair: "missing or unreadable"}},
		{"index: 100 MB", func(h *hostileState) { sparse(h.t, h.path(".gitca/index.json"), 100<<20) }, outcome{err: `\.gitca/index\.json: 104857600 bytes, over the limit of 67108864`}},
		// Swapped records.
		{"a record replaced by another", func(h *hostileState) { h.write(web, h.read(dbPeer)) }, outcome{repair: "also recorded in"}},
		{"two records swapped", func(h *hostileState) {
			a, b := h.read(web), h.read(dbPeer)
			h.write(web, b)
			h.write(dbPeer, a)
		}, outcome{repair: "moved"}},
		{"a CA record replaced by another CA's", func(h *hostileState) { h.write(issuing, h.read("ca/other.yaml")) }, outcome{err: `ca/issuing\.yaml: the record of CertificateAuthority/issuing exists, but it is the record of CertificateAuthority/other`}},
		// Huge and deep YAML.
		{"a record of 40,000 keys", func(h *hostileState) {
			h.replace(web, "stringData:\n", "stringData:\n"+manyKeys.String())
		}, outcome{err: `secret-web\.yaml: line \d+: keys in one mapping over the limit of 256`}},
		{"deep nesting", func(h *hostileState) { h.write(web, []byte(deep)) }, outcome{err: `secret-web\.yaml: line 5: YAML nesting depth over the limit of 32`}},
		{"alias bomb", func(h *hostileState) { h.write(web, []byte(bomb)) }, outcome{err: `secret-web\.yaml: line 5: YAML anchors, aliases and merge keys over the limit of 0`}},
		{"self-referencing merge key", func(h *hostileState) { h.write(web, []byte(selfMerge)) }, outcome{err: `secret-web\.yaml: line 5: YAML anchors, aliases and merge keys over the limit of 0`}},
		{"200 MB junk record", func(h *hostileState) { sparse(h.t, h.path(web), 200<<20) }, outcome{err: `secret-web\.yaml: 209715200 bytes, over the limit of 4194304`}},
		{"a big stray file", func(h *hostileState) { sparse(h.t, h.path("docs/big.bin"), 5<<20) }, outcome{err: `docs/big\.bin: 5242880 bytes, over the limit of 4194304`}},
		{"a kustomization of 30,000 resources", func(h *hostileState) {
			h.write("clusters/prod/kustomization.yaml", []byte(bigKustomization.String()))
		}, outcome{repair: "overlay-changed"}},
		{"a second document in a record", func(h *hostileState) {
			h.write(web, append(h.read(web), "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: system:authenticated}]\n"...))
		}, outcome{repair: "2 YAML documents"}},
		// Plain keys.
		{"a PEM key in a stray file", func(h *hostileState) { h.write("notes/key.pem", []byte("note\n"+h.pemKey)) }, outcome{err: `notes/key\.pem:2: PEM PRIVATE KEY`}},
		{"tls.key left in plain text", func(h *hostileState) {
			b := h.read(web)
			i := bytes.Index(b, []byte("    tls.key: ENC["))
			j := bytes.IndexByte(b[i:], '\n')
			h.write(web, append(append(append([]byte{}, b[:i]...), []byte("    tls.key: |\n        "+strings.ReplaceAll(strings.TrimSpace(h.pemKey), "\n", "\n        "))...), b[i+j:]...))
		}, outcome{err: `secret-web\.yaml:\d+: PEM PRIVATE KEY`}},
		{"a base64 key in data:", func(h *hostileState) {
			h.replace(web, "stringData:\n", "data:\n    extra.key: "+base64.StdEncoding.EncodeToString([]byte(h.pemKey))+"\nstringData:\n")
		}, outcome{err: `secret-web\.yaml:\d+: PEM PRIVATE KEY \(base64\)`}},
		{"an age identity in a README", func(h *hostileState) { h.write("README.md", []byte("# state\n\n"+h.ageSecret+"\n")) }, outcome{err: `README\.md:3: age secret key`}},
		// Unknown values.
		{"an extra value, sealed", func(h *hostileState) {
			h.reseal(web, nil, func(m map[string]any) { m["stringData"].(map[string]any)["foo"] = "bar" })
		}, outcome{repair: "unexpected-content (stringData.foo)"}},
		{"an annotation that stops Flux", func(h *hostileState) {
			h.reseal(web, nil, func(m map[string]any) {
				m["metadata"].(map[string]any)["annotations"].(map[string]any)["kustomize.toolkit.fluxcd.io/reconcile"] = "disabled"
			})
		}, outcome{repair: "unexpected-content (annotation kustomize.toolkit.fluxcd.io/reconcile)"}},
		{"another kind posing as a record", func(h *hostileState) {
			h.reseal(web, nil, func(m map[string]any) { m["kind"] = "ConfigMap" })
		}, outcome{repair: "unexpected-content (kind ConfigMap (not Secret))"}},
		{"an extra value, MAC broken", func(h *hostileState) { h.replace(web, "stringData:\n", "stringData:\n    foo: bar\n") }, outcome{repair: "damaged (sops MAC mismatch"}},
		// Foreign recipients.
		{"sealed to a foreign recipient too", func(h *hostileState) {
			h.reseal(web, []string{h.recipient, foreignRecipient}, func(map[string]any) {})
		}, outcome{repair: "recipients-changed"}},
		{"a foreign PGP key in the sops block", func(h *hostileState) {
			h.replace(web, "    age:\n", "    pgp:\n        - fp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21\n          created_at: \"2026-01-01T00:00:00Z\"\n          enc: x\n    age:\n")
		}, outcome{repair: "unexpected-content (sops.pgp)"}},
		// Unreadable CA records.
		{"a CA record cut short", func(h *hostileState) {
			b := h.read(root)
			h.write(root, b[:len(b)/3])
		}, outcome{err: `ca/root\.yaml: the record of CertificateAuthority/root is damaged: not sealed`}},
		{"a CA record emptied", func(h *hostileState) { h.write(issuing, nil) }, outcome{err: `ca/issuing\.yaml: the record of CertificateAuthority/issuing exists, but it is not a gitca record`}},
		{"a CA certificate garbled", func(h *hostileState) { h.replace(root, "        MII", "        XII") }, outcome{err: `ca/root\.yaml: the record of CertificateAuthority/root is damaged: ca\.crt: PEM block 1: x509: malformed certificate`}},
		{"a CA record that is no YAML", func(h *hostileState) { h.write(root, append([]byte("gitca.dev/object: x\n\t"), h.read(root)...)) }, outcome{err: `ca/root\.yaml: the record of CertificateAuthority/root exists, but it cannot be read: yaml: line 2`}},
		{"a CA record edited without its key", func(h *hostileState) { h.replace(root, "name: root", "name: root2") }, outcome{err: `ca/root\.yaml: the record of CertificateAuthority/root is damaged`}},
	}
	require.GreaterOrEqual(t, len(cases), 30)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &hostileState{t: t, dir: filepath.Join(t.TempDir(), "state"), outside: filepath.Join(t.TempDir(), "outside"),
				ids: ids, recipient: recipient, pemKey: pemKey, ageSecret: ageSecret}
			require.NoError(t, os.CopyFS(h.dir, os.DirFS(base)))
			require.NoError(t, os.MkdirAll(h.outside, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(h.outside, "victim"), []byte("untouched"), 0o644))
			c.mutate(h)
			sentinel := listAll(t, h.outside)

			run := func(args ...string) result {
				start := time.Now()
				r := e.run(t, args...)
				assert.Less(t, time.Since(start), 5*time.Second, "gitca %s", args[0])
				out := r.stdout + r.stderr
				assert.NotContains(t, out, "goroutine ", "no stack trace")
				assert.NotContains(t, out, "panic:")
				assert.NotContains(t, out, strings.Split(pemKey, "\n")[1], "no key in any output")
				assert.NotContains(t, out, ageSecret[20:])
				return r
			}
			now := rfc3339(t0.Add(time.Hour))
			if !c.want.at.IsZero() {
				now = rfc3339(c.want.at)
			}
			r := run("render", "--topology", topo, "--state", h.dir, "--now", now)
			if c.want.repair == "renewal-window" {
				assert.NotContains(t, string(h.read(".gitca/index.json")), "2099", "the lie is not copied")
			}
			if c.want.err != "" {
				require.Equal(t, 1, r.code, "render fails\n%s%s", r.stdout, r.stderr)
				assert.Regexp(t, regexp.MustCompile(c.want.err), r.stderr)
				p := run("plan", "--topology", topo, "--state", h.dir, "--now", now)
				assert.Equal(t, 1, p.code, "plan fails too\n%s%s", p.stdout, p.stderr)
			} else {
				require.Equal(t, 0, r.code, "render repairs\n%s%s", r.stdout, r.stderr)
				assert.Contains(t, r.stdout, c.want.repair, "the repair is named")
				p := run("plan", "--detailed-exitcode", "--topology", topo, "--state", h.dir, "--now", now)
				assert.Equal(t, 0, p.code, "the next plan has nothing to do\n%s%s", p.stdout, p.stderr)
			}
			assert.Equal(t, sentinel, listAll(t, h.outside), "nothing outside the tree changed")
		})
	}
}
