package apply

import (
	"fmt"

	"github.com/gitca-dev/gitca/plan"
	"github.com/gitca-dev/gitca/sign"
	"github.com/gitca-dev/gitca/state"
	"github.com/gitca-dev/gitca/topology"
)

// offline carries out the plan of a CA signed offline: a request makes a
// key (or opens the stored one) and a certificate signing request; a
// certificate signed for it is installed once the key it holds is the one
// the certificate names; anything else rewrites the record as it is,
// the request that still waits included.
func (ap *Applier) offline(a *plan.Action, m *Material) error {
	var err error
	if a.NewKey() {
		if m.Key, err = sign.GenerateKey(topology.KeyAlgorithm(a.Desired.Shape.KeyAlgorithm), ap.Rand); err != nil {
			return err
		}
	} else if m.Key, err = ap.storedKey(a); err != nil {
		return err
	}
	if a.Stored != nil {
		m.Cert = a.Stored.Cert()
		m.csr = []byte(a.Stored.PlainValues()[plan.KeyCSR])
	}
	switch {
	case a.Action == plan.ActionRequest:
		sh := a.Desired.Shape
		m.csr, err = sign.CARequestPEM(sh.Subject(), sh.PathLen, m.Key)
		return err
	case a.NewCert():
		c := ap.Plan.SignedCertificate(a.ID)
		if c == nil {
			return fmt.Errorf("no certificate signed offline in the plan")
		}
		if !sign.KeyMatches(m.Key, c.PublicKey) {
			return fmt.Errorf("%s is not the certificate of the key in %s", a.Desired.CA.Spec.SignedCertificate, a.Path)
		}
		m.Cert, m.csr = c, nil
	}
	return nil
}

// requestFile is the published request of a CA signed offline, when the
// run writes its record with one.
func (ap *Applier) requestFile(a *plan.Action, m *Material) map[string]*state.Object {
	if a.Action != plan.ActionRequest || len(m.csr) == 0 {
		return nil
	}
	path := ap.Plan.Layout.CACSR(a.Name)
	return map[string]*state.Object{path: {Path: path, Raw: m.csr}}
}
