// Package apply carries out a plan: it opens the keys the plan needs, signs
// what the plan renews, and seals every record that changes. It returns the
// sealed records and writes nothing; emit turns them into the state tree.
package apply

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/secrets"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// Material is an object's key and certificates after Apply.
type Material struct {
	Key   crypto.Signer
	Cert  *x509.Certificate   // nil for key pairs
	Chain []*x509.Certificate // issuers from the direct issuer up to the root (excluded self)

	keys *keyGenerations // a rotating key pair's other keys and verify list
	csr  []byte          // a CA signed offline: the request that waits for its certificate
}

// Root is the top of the chain (the certificate itself for a root CA).
func (m *Material) Root() *x509.Certificate {
	if len(m.Chain) > 0 {
		return m.Chain[len(m.Chain)-1]
	}
	return m.Cert
}

// Applier executes a plan: it decrypts only the keys it needs, signs, and
// seals every file that changes. It writes nothing.
type Applier struct {
	Plan       *plan.Plan
	State      *state.State
	Identities *secrets.Identities // nil: no identity; fine as long as nothing must be decrypted
	Rand       io.Reader           // nil: crypto/rand
	Workers    int                 // 0: GOMAXPROCS
	// Progress, when set, is called after each object is signed and sealed
	// with how many of the objects that change are done; calls are serialised.
	Progress func(done, total int)

	mu        sync.Mutex
	keys      map[string]*keyOnce
	materials map[string]*Material
	records   map[string]*state.Object
}

type keyOnce struct {
	once   sync.Once
	key    crypto.Signer
	opened *secrets.Opened // the stored file the key came from; under Applier.mu
	err    error
}

// ErrNeedIdentity is returned when a run must open a sealed key but has no age identity.
var ErrNeedIdentity = errors.New("an age identity is needed")

// Result is what Apply produces.
type Result struct {
	// Records are the sealed files by slash path: their bytes (Raw) to write,
	// and their summary as the state will read it back, for its index.
	Records   map[string]*state.Object
	Materials map[string]*Material // by object ID, for every object (kept ones carry certificates only)

	plan *plan.Plan
}

// CA is what a CA's trust holds after the run (its certificate, and during
// a rotation its other live generation's), in the shape the plan derives
// bundles from (plan.CASource); nothing is pending once Apply is done.
func (r *Result) CA(name string) ([]*x509.Certificate, []string) {
	return trustOf(r.plan, func(id string) *Material { return r.Materials[id] }, name)
}

// Apply signs and seals. Objects sign as soon as their issuer is done, so
// independent subtrees run in parallel on all cores.
func (ap *Applier) Apply(ctx context.Context) (*Result, error) {
	ap.keys = map[string]*keyOnce{}
	ap.materials = map[string]*Material{}
	ap.records = map[string]*state.Object{}
	out := &Result{Records: ap.records, Materials: ap.materials, plan: ap.Plan}
	workers := ap.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Every object waits for what it depends on, then for one of the
	// workers' slots: a slot is never held while waiting, so a deep issuer
	// tree cannot starve the pool.
	sem := make(chan struct{}, workers)
	done := map[string]chan struct{}{}
	for _, a := range ap.Plan.Objects {
		done[a.ID] = make(chan struct{})
	}
	g, ctx := errgroup.WithContext(ctx)
	total, finished := 0, 0
	for _, a := range ap.Plan.Objects {
		if a.Action != plan.ActionDelete && a.Action != plan.ActionKeep && a.Action != plan.ActionWait {
			total++
		}
	}
	for _, a := range ap.Plan.Objects {
		if a.Action == plan.ActionDelete || a.Action == plan.ActionWait {
			close(done[a.ID])
			continue
		}
		g.Go(func() error {
			// done is closed on success only: the dependents of a failed object
			// stop on the cancelled context instead of reporting a missing
			// issuer ahead of the real error.
			for _, dep := range ap.deps(a) {
				select {
				case <-done[dep]:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				return err
			}
			files, err := ap.applyOne(a)
			if err != nil {
				return fmt.Errorf("%s: %w", a.ID, err)
			}
			ap.mu.Lock()
			maps.Copy(ap.records, files)
			if ap.Progress != nil && a.Action != plan.ActionKeep {
				finished++
				ap.Progress(finished, total)
			}
			ap.mu.Unlock()
			close(done[a.ID])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// record is a record this run has sealed, by path, or nil.
func (ap *Applier) record(path string) *state.Object {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.records[path]
}

// deps are the objects whose material an object needs first: its issuer, and
// for a kubeconfig every CA, since its target may be any CA or bundle of them.
func (ap *Applier) deps(a *plan.Action) []string {
	if a.Kind == plan.KindKubeconfig || a.Kind == plan.KindMergedKubeconfig {
		var out []string
		for _, o := range ap.Plan.Objects {
			if o.Kind == plan.KindCA && o.Action != plan.ActionDelete {
				out = append(out, o.ID)
			}
		}
		for _, m := range a.Desired.Members {
			out = append(out, m.ID)
		}
		return out
	}
	var out []string
	if iss := a.Desired.Shape.Issuer; iss != "" {
		out = append(out, string(plan.KindCA)+"/"+iss)
	}
	// Its ca.crt holds every live generation of its root.
	for _, id := range ap.Plan.TrustDeps(a.Desired) {
		if id != a.ID && ap.Plan.Action(id) != nil {
			out = append(out, id)
		}
	}
	return out
}

func (ap *Applier) material(id string) *Material {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.materials[id]
}

func (ap *Applier) setMaterial(id string, m *Material) {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	ap.materials[id] = m
}

// applyOne decides the object's key and certificate, then renders and seals its files.
func (ap *Applier) applyOne(a *plan.Action) (map[string]*state.Object, error) {
	d := a.Desired
	m := &Material{}
	var issuer *Material
	if d.Shape.Issuer != "" {
		issuer = ap.material(string(plan.KindCA) + "/" + d.Shape.Issuer)
		if issuer == nil {
			return nil, fmt.Errorf("issuer %s has no certificate", d.Shape.Issuer)
		}
		m.Chain = append([]*x509.Certificate{issuer.Cert}, issuer.Chain...)
	}
	var err error
	switch {
	case d.Kind == plan.KindCA && d.CA.Spec.Import != nil:
		err = ap.importCA(a, m)
	case ap.Plan.OfflineIssued(d) && a.Action != plan.ActionKeep:
		err = ap.offline(a, m)
	case d.Kind == plan.KindMergedKubeconfig:
		// Made from its members, with no key or certificate of its own.
		ap.setMaterial(a.ID, m)
		if a.Action == plan.ActionKeep {
			return nil, nil
		}
		return ap.renderFiles(a, m)
	case a.Action == plan.ActionKeep:
		// Nothing to write: the certificate is what the state holds; the key stays sealed.
		m.Cert = a.Cert
		if a.Cert == nil && d.Kind == plan.KindCA {
			return nil, fmt.Errorf("kept without a certificate")
		}
		ap.setMaterial(a.ID, m)
		return nil, nil
	default:
		err = ap.sign(a, m, issuer)
	}
	if err != nil {
		return nil, err
	}
	ap.setMaterial(a.ID, m)
	if a.Action == plan.ActionKeep {
		return nil, nil
	}
	return ap.renderFiles(a, m)
}

// sign fills m with the object's key (new or unsealed from the state) and
// certificate (new, or the stored one when only the chain or recipients change).
func (ap *Applier) sign(a *plan.Action, m *Material, issuer *Material) error {
	d := a.Desired
	var err error
	if a.NewKey() {
		if m.Key, err = sign.GenerateKey(topology.KeyAlgorithm(d.Shape.KeyAlgorithm), ap.Rand); err != nil {
			return err
		}
	} else if m.Key, err = ap.storedKey(a); err != nil {
		return err
	}
	if d.Kind == plan.KindKeyPair {
		if kr := ap.Plan.KeyRotation(a.ID); kr != nil {
			return ap.rotateKeys(a, m, kr)
		}
		return nil
	}
	if !a.NewCert() {
		// Chain update or re-encryption: the stored certificate is carried over.
		m.Cert = a.Stored.Cert()
		return nil
	}
	spec, err := certSpec(d, ap.Plan.Now)
	if err != nil {
		return err
	}
	var issuerCert *x509.Certificate
	var issuerKey crypto.Signer = m.Key
	if issuer != nil {
		issuerCert = issuer.Cert
		if issuerKey, err = ap.issuerKey(d.Shape.Issuer); err != nil {
			return err
		}
	}
	m.Cert, err = sign.SignCertificate(spec, m.Key.Public(), issuerCert, issuerKey, ap.Rand)
	return err
}

// issuerKey returns a CA's private key: the one just made in this run, or the
// sealed one from the state, opened once and shared by every certificate it signs.
func (ap *Applier) issuerKey(ca string) (crypto.Signer, error) {
	id := string(plan.KindCA) + "/" + ca
	if m := ap.material(id); m != nil && m.Key != nil {
		return m.Key, nil
	}
	ia := ap.Plan.Action(id)
	if ia == nil {
		return nil, fmt.Errorf("issuer %s is not in the plan", ca)
	}
	if ia.Desired != nil && ia.Desired.CA != nil && ia.Desired.CA.Spec.Import != nil && ia.Desired.CA.Spec.Import.Key == "" {
		return nil, fmt.Errorf("issuer %s is an offline CA (imported without a key) and cannot sign here", ca)
	}
	k, err := ap.storedKey(ia)
	if err != nil {
		return nil, fmt.Errorf("opening the key of issuer %s: %w", ca, err)
	}
	return k, nil
}

// storedKey unseals the private key of an object from the state, once.
func (ap *Applier) storedKey(a *plan.Action) (crypto.Signer, error) {
	ap.mu.Lock()
	ko := ap.keys[a.ID]
	if ko == nil {
		ko = &keyOnce{}
		ap.keys[a.ID] = ko
	}
	ap.mu.Unlock()
	ko.once.Do(func() {
		if a.Stored == nil {
			ko.err = fmt.Errorf("no key in the state for %s", a.ID)
			return
		}
		if ap.Identities == nil {
			ko.err = fmt.Errorf("%w to open the key in %s (set SOPS_AGE_KEY_FILE)", ErrNeedIdentity, a.Stored.Path)
			return
		}
		op, err := secrets.OpenSealed(a.Stored.Raw, *ap.Identities)
		if err != nil {
			ko.err = fmt.Errorf("opening %s: %w", a.Stored.Path, err)
			return
		}
		ap.mu.Lock()
		ko.opened = op
		ap.mu.Unlock()
		ko.key, ko.err = KeyOf(op.StringData(), a.Stored.Path)
	})
	return ko.key, ko.err
}

// openedRecord is a's stored file if storedKey has opened it, so that
// resealing it needs no second decryption.
func (ap *Applier) openedRecord(a *plan.Action) *secrets.Opened {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	if ko := ap.keys[a.ID]; ko != nil {
		return ko.opened
	}
	return nil
}

// keyFromManifest finds the private key in a decrypted manifest (keyOf).
func keyFromManifest(plain []byte, where string) (crypto.Signer, error) {
	var doc struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return KeyOf(doc.StringData, where)
}

// errNoKey: the manifest holds no private key (an offline root, imported without it).
var errNoKey = errors.New("holds no private key")

// KeyOf is the private key among a manifest's values: tls.key, or the key inside a kubeconfig.
func KeyOf(data map[string]string, where string) (crypto.Signer, error) {
	if v, ok := data["tls.key"]; ok {
		return sign.ParsePrivateKeyPEM([]byte(v))
	}
	if v, ok := data["kubeconfig"]; ok {
		return KeyFromKubeconfig([]byte(v))
	}
	return nil, fmt.Errorf("%s %w", where, errNoKey)
}

// importCA brings an imported root CA in: its certificate from the topology repo,
// its key from a SOPS-encrypted file there. Only a self-signed CA whose key
// matches is accepted; Kubernetes and installers such as StarlingX require a root.
func (ap *Applier) importCA(a *plan.Action, m *Material) error {
	imp := a.Desired.CA.Spec.Import
	raw, err := os.ReadFile(filepath.Join(ap.Plan.Topology.Root, filepath.FromSlash(imp.Certificate)))
	if err != nil {
		return fmt.Errorf("spec.import.certificate: %w", err)
	}
	certs, err := sign.ParseCertsPEM(raw)
	if err != nil {
		return fmt.Errorf("spec.import.certificate %s: %w", imp.Certificate, err)
	}
	c := certs[0]
	if !c.IsCA || !c.BasicConstraintsValid {
		return fmt.Errorf("spec.import.certificate %s: not a CA certificate (basicConstraints CA:TRUE required)", imp.Certificate)
	}
	if err := c.CheckSignatureFrom(c); err != nil || c.Subject.String() != c.Issuer.String() {
		return fmt.Errorf("spec.import.certificate %s: not self-signed; only a root CA can be imported, not an intermediate", imp.Certificate)
	}
	m.Cert = c
	if imp.Key == "" {
		return nil
	}
	if a.Action == plan.ActionKeep {
		return nil
	}
	if ap.Identities == nil {
		return fmt.Errorf("%w to open spec.import.key %s (set SOPS_AGE_KEY_FILE)", ErrNeedIdentity, imp.Key)
	}
	sealed, err := os.ReadFile(filepath.Join(ap.Plan.Topology.Root, filepath.FromSlash(imp.Key)))
	if err != nil {
		return fmt.Errorf("spec.import.key: %w", err)
	}
	plain, err := secrets.Open(sealed, *ap.Identities)
	if err != nil {
		return fmt.Errorf("spec.import.key %s: %w", imp.Key, err)
	}
	key, err := keyFromManifest(plain, imp.Key)
	if err != nil {
		// The file may be a sealed PEM rather than a manifest.
		if key, err = sign.ParsePrivateKeyPEM(plain); err != nil {
			return fmt.Errorf("spec.import.key %s: no private key (expected stringData.tls.key or a PEM key)", imp.Key)
		}
	}
	if !sign.KeyMatches(key, c.PublicKey) {
		return fmt.Errorf("spec.import.key %s does not match the public key of %s", imp.Key, imp.Certificate)
	}
	m.Key = key
	return nil
}

// certSpec turns a desired shape into what the signer needs.
func certSpec(d *plan.Desired, now time.Time) (sign.CertSpec, error) {
	sh := d.Shape
	spec := sign.CertSpec{
		Subject:   sh.Subject(),
		CA:        sh.CA,
		PathLen:   sh.PathLen,
		Profile:   topology.Profile(sh.Profile),
		DNSNames:  sh.DNSNames,
		NotBefore: now.Add(-sign.Backdate),
		NotAfter:  now.Add(d.Validity()),
	}
	for _, s := range sh.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			return sign.CertSpec{}, fmt.Errorf("invalid IP address %q", s)
		}
		spec.IPAddresses = append(spec.IPAddresses, ip)
	}
	for _, s := range sh.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return sign.CertSpec{}, fmt.Errorf("invalid URI %q: %w", s, err)
		}
		spec.URIs = append(spec.URIs, u)
	}
	return spec, nil
}
