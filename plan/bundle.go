package plan

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/topology"
)

// BundleCerts resolves a TrustBundle: its CAs, inherited bundles and PEM files,
// de-duplicated by public key (a CA renewed with the same key is one trust
// anchor: the newest certificate stands for it), expired certificates dropped,
// sorted by subject then notAfter. A CA re-keyed during rotation has a new public
// key, so old and new both stay in the bundle until the old one expires or leaves.
//
// A CA that cas reports pending (its new certificate is signed later in the
// run) is left out and named in pending, so a plan can say what enters.
func BundleCerts(t *topology.Topology, name string, now time.Time, cas CASource) (certs []*x509.Certificate, pending []string, err error) {
	return bundleCerts(t, name, now, cas, nil)
}

// BundleCerts is a bundle as this plan makes it: a CA that waits for its
// certificate (signed offline) is left out until it has one.
func (p *Plan) BundleCerts(name string, cas CASource) ([]*x509.Certificate, []string, error) {
	return bundleCerts(p.Topology, name, p.Now, cas, p.waitingCA)
}

func bundleCerts(t *topology.Topology, name string, now time.Time, cas CASource, waiting func(string) bool) (certs []*x509.Certificate, pending []string, err error) {
	var all []*x509.Certificate
	seen := map[string]bool{}
	var walk func(string) error
	walk = func(n string) error {
		if seen[n] {
			return nil // validation rejects cycles; a diamond is fine
		}
		seen[n] = true
		b := t.TrustBundle(n)
		if b == nil {
			return fmt.Errorf("trust bundle %s does not exist", n)
		}
		for i, s := range b.Spec.Sources {
			switch {
			case s.CA != "" && waiting != nil && waiting(s.CA):
			case s.CA != "":
				cs, p := cas(s.CA)
				if len(cs) == 0 && len(p) == 0 {
					return fmt.Errorf("trust bundle %s: spec.sources[%d].ca: %s has no certificate", n, i, s.CA)
				}
				all = append(all, cs...)
				pending = append(pending, p...)
			case s.Bundle != "":
				if err := walk(s.Bundle); err != nil {
					return err
				}
			case s.File != "":
				raw, err := os.ReadFile(filepath.Join(t.Root, filepath.FromSlash(s.File)))
				if err != nil {
					return fmt.Errorf("trust bundle %s: spec.sources[%d].file: %w", n, i, err)
				}
				certs, err := sign.ParseCertsPEM(raw)
				if err != nil {
					return fmt.Errorf("trust bundle %s: spec.sources[%d].file %s: %w", n, i, s.File, err)
				}
				all = append(all, certs...)
			}
		}
		return nil
	}
	if err := walk(name); err != nil {
		return nil, nil, err
	}
	slices.Sort(pending)
	return mergeBundle(all, now), slices.Compact(pending), nil
}

// mergeBundle drops expired and duplicate certificates and sorts the rest, so
// the same inputs always give the same bytes.
func mergeBundle(in []*x509.Certificate, now time.Time) []*x509.Certificate {
	bySPKI := map[string]*x509.Certificate{}
	for _, c := range in {
		if now.After(c.NotAfter) {
			continue
		}
		k := string(c.RawSubjectPublicKeyInfo)
		if prev, ok := bySPKI[k]; !ok || c.NotAfter.After(prev.NotAfter) ||
			(c.NotAfter.Equal(prev.NotAfter) && bytes.Compare(c.Raw, prev.Raw) < 0) {
			bySPKI[k] = c
		}
	}
	out := make([]*x509.Certificate, 0, len(bySPKI))
	for _, c := range bySPKI {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if s1, s2 := out[i].Subject.String(), out[j].Subject.String(); s1 != s2 {
			return s1 < s2
		}
		if !out[i].NotAfter.Equal(out[j].NotAfter) {
			return out[i].NotAfter.Before(out[j].NotAfter)
		}
		return bytes.Compare(out[i].Raw, out[j].Raw) < 0
	})
	return out
}

// bundleTargetChanged is the target-changed rule for a kubeconfig whose
// spec.target.ca names a TrustBundle: its embedded CA bundle must follow the
// bundle, or the kubeconfig stops trusting a rotated server. It reads public
// material only: a CA of the bundle signing anew this run changes the bundle;
// otherwise the bundle is computed from the certificates the plan keeps
// (and the PEM files it imports) and compared with the stored ca.crt, which
// also catches an edited source list, a changed file and an expired member.
func bundleTargetChanged(p *Plan, t *topology.Topology, in policyInput) []Reason {
	if in.o == nil || in.d.Kubeconfig == nil {
		return nil
	}
	name := in.d.Kubeconfig.Spec.Target.CA
	if t.TrustBundle(name) == nil {
		return nil
	}
	certs, pending, err := p.BundleCerts(name, p.planTimeTrust)
	if len(pending) > 0 {
		return []Reason{{Code: ReasonTargetChanged, Detail: fmt.Sprintf("CA data: trust bundle %s: %s get(s) a new certificate", name, strings.Join(pending, ", "))}}
	}
	if err != nil {
		return []Reason{{Code: ReasonTargetChanged, Detail: fmt.Sprintf("trust bundle %s: %v", name, err)}}
	}
	if !sameCerts(certs, in.o.CAChain()) {
		return []Reason{{Code: ReasonTargetChanged, Detail: "CA data: trust bundle " + name + ": " + trustDiff(in.o.CAChain(), certs, nil).String()}}
	}
	return nil
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) {
			return false
		}
	}
	return true
}
